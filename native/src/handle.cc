// Handles, argument conversion and errors for the op table (see handle.h).
#include "handle.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_map>

namespace dyad {

std::atomic<int64_t> Stats::count{0};
std::atomic<int64_t> Stats::bytes{0};

static const napi_type_tag kTensorTag = {0x6479616474656e73ULL, 0x6f72686e646c3031ULL};

// Storages held by live handles, per environment (each isolate gets its own V8 report): how
// many handles hold each one and its bytes, and what V8 has been told. Touched only from wrap
// and freeHolder, which run on their environment's JS thread; the mutex covers worker threads.
//
// V8 answers every rise of external memory beyond its limit (~64 MB over the level at the last
// GC) with a garbage collection, although most tensors here are freed deterministically (scopes,
// dispose) a moment later: one transformer forward at batch 256 allocates several 40-160 MB
// activations and frees them again, and reporting each of them made V8 collect every few hundred
// milliseconds. So V8 sees a smoothed level: the live bytes are reported only when they move more
// than a band (a quarter of the reported level, at least 64 MB) away from the last reported
// value. Memory held by handles that nobody disposes still grows past the band and still makes
// V8 collect them.
namespace {
struct StorageKey {
  napi_env env;
  const void* storage;
  bool operator==(const StorageKey& o) const { return env == o.env && storage == o.storage; }
};
struct StorageKeyHash {
  size_t operator()(const StorageKey& k) const {
    return std::hash<const void*>()(k.storage) ^ (std::hash<const void*>()(k.env) << 1);
  }
};
struct StorageUse {
  int64_t handles;
  int64_t bytes;
};
struct Reported {
  int64_t live = 0;
  int64_t told = 0;
};
constexpr int64_t kMinBand = int64_t(64) << 20;

std::mutex accountingMutex;
std::unordered_map<StorageKey, StorageUse, StorageKeyHash> storages;
std::unordered_map<napi_env, Reported> reported;

/// One handle more (+1, with the storage's bytes) or less (-1) on `storage`; updates the live
/// bytes when the storage gains its first or loses its last handle, and tells V8 past the band.
void account(napi_env env, const void* storage, int handles, int64_t bytes) {
  int64_t delta = 0;
  int64_t change = 0;
  {
    std::lock_guard<std::mutex> lock(accountingMutex);
    auto it = storages.try_emplace(StorageKey{env, storage}, StorageUse{0, bytes}).first;
    it->second.handles += handles;
    if (handles > 0 && it->second.handles == 1) delta = it->second.bytes;
    if (it->second.handles == 0) {
      delta = -it->second.bytes;
      storages.erase(it);
    }
    if (delta != 0) {
      Reported& r = reported[env];
      r.live += delta;
      const int64_t band = std::max(kMinBand, r.told / 4);
      if (r.live > r.told + band || r.live < r.told - band || (r.live == 0 && r.told != 0)) {
        change = r.live - r.told;
        r.told = r.live;
      }
    }
  }
  Stats::count += handles;
  Stats::bytes += delta;
  if (change != 0) {
    int64_t adjusted;
    napi_adjust_external_memory(env, change, &adjusted);
  }
}
}  // namespace

namespace {
/// The handle's finalizer: a tensor nobody disposed, collected by V8.
void finalizeHolder(napi_env env, void* data, void* /*hint*/) {
  auto* h = static_cast<Holder*>(data);
  freeHolder(Napi::Env(env), h);
  delete h;
}

void check(Napi::Env env, napi_status status, const char* what) {
  if (status != napi_ok) throw Napi::Error::New(env, std::string("dyad: ") + what + " failed (napi status " + std::to_string(status) + ")");
}
}  // namespace

Napi::Value wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  auto* h = new Holder{std::move(t)};
  // A tensor without a storage (opaque layouts) is keyed by its holder and counted alone.
  const bool shared = h->t.has_storage();
  h->storage = shared ? static_cast<const void*>(h->t.storage().unsafeGetStorageImpl()) : h;
  account(env, h->storage, +1,
          shared ? static_cast<int64_t>(h->t.storage().nbytes()) : static_cast<int64_t>(h->t.numel() * h->t.element_size()));
  // A plain object with the holder wrapped in it, not an External: dispose removes the wrap and
  // its finalizer at once (disposeHandle). An External's finalizer cannot be cancelled; Node
  // queues it when V8 collects the handle and runs it only in its next setImmediate phase, which
  // a training loop that is synchronous or awaits only promises (the DataLoader over in-memory
  // data) never reaches: ~250 bytes per disposed tensor stayed allocated, ~65 KB a SimCLR step.
  napi_value obj;
  napi_status st = napi_create_object(env, &obj);
  if (st == napi_ok) st = napi_type_tag_object(env, obj, &kTensorTag);
  if (st == napi_ok) st = napi_wrap(env, obj, h, finalizeHolder, nullptr, nullptr);
  if (st != napi_ok) {
    freeHolder(env, h);
    delete h;
    check(env, st, "wrapping a tensor");
  }
  return Napi::Value(env, obj);
}

void freeHolder(Napi::Env env, Holder* h) {
  if (h->storage == nullptr) return;  // already freed
  // The storage key is still valid here: this handle's tensor keeps the storage alive.
  account(env, h->storage, -1, 0);
  h->t = at::Tensor();
  h->storage = nullptr;
}

/// The holder behind `v` if it is a tensor handle (null once disposed); throws a TypeError otherwise.
static Holder* holderOf(Napi::Env env, const Napi::Value& v, const char* what) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) == napi_ok && type == napi_object) {
    bool tagged = false;
    if (napi_check_object_type_tag(env, v, &kTensorTag, &tagged) == napi_ok && tagged) {
      void* data = nullptr;
      // a disposed handle keeps its tag but has no wrap any more
      if (napi_unwrap(env, v, &data) != napi_ok) return nullptr;
      return static_cast<Holder*>(data);
    }
  }
  throw Napi::TypeError::New(env, std::string(what) + ": expected a Tensor");
}

Holder* unwrapHolder(Napi::Env env, const Napi::Value& v, const char* what) {
  Holder* h = holderOf(env, v, what);
  if (h == nullptr || !h->t.defined()) throw Napi::Error::New(env, std::string(what) + ": the tensor was disposed");
  return h;
}

void disposeHandle(Napi::Env env, const Napi::Value& v) {
  Holder* h = holderOf(env, v, "free");
  if (h == nullptr) return;  // disposed before
  void* data = nullptr;
  check(env, napi_remove_wrap(env, v, &data), "disposing a tensor");
  freeHolder(env, h);
  delete h;
}

void throwTorch(Napi::Env env, const std::string& msg) {
  auto* data = env.GetInstanceData<InstanceData>();
  if (data && !data->errorClass.IsEmpty()) {
    Napi::Object err = data->errorClass.New({Napi::String::New(env, msg)});
    throw Napi::Error(env, err);
  }
  throw Napi::Error::New(env, msg);
}

at::ScalarType parseDtype(const std::string& s) {
  if (s == "float32" || s == "float") return at::kFloat;
  if (s == "float64" || s == "double") return at::kDouble;
  if (s == "float16" || s == "half") return at::kHalf;
  if (s == "bfloat16") return at::kBFloat16;
  if (s == "int64" || s == "long") return at::kLong;
  if (s == "int32" || s == "int") return at::kInt;
  if (s == "int16") return at::kShort;
  if (s == "int8") return at::kChar;
  if (s == "uint8") return at::kByte;
  if (s == "bool") return at::kBool;
  throw std::invalid_argument("unknown dtype '" + s +
                              "': use one of float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool");
}

const char* dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "unsupported";
  }
}

at::Device parseDevice(const std::string& s) {
  try {
    return at::Device(s);
  } catch (const c10::Error&) {
    throw std::invalid_argument("unknown device '" + s + "': use 'cpu', 'cuda' or 'cuda:N'");
  }
}

Napi::Value ret(Napi::Env env, const std::vector<at::Tensor>& v) {
  auto arr = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); i++) arr.Set(uint32_t(i), wrap(env, v[i]));
  return arr;
}

// ---- Args ----------------------------------------------------------------------------

void Args::fail(size_t i, const std::string& expected) {
  throw Napi::TypeError::New(env(), std::string(op_) + ": argument " + std::to_string(i) + " must be " + expected);
}

const at::Tensor& Args::t(size_t i) {
  if (i >= info_.Length()) fail(i, "a Tensor");
  std::string what = std::string(op_) + ": argument " + std::to_string(i);
  return unwrapHolder(env(), info_[i], what.c_str())->t;
}

c10::optional<at::Tensor> Args::ot(size_t i) {
  if (!has(i)) return c10::nullopt;
  return t(i);
}

at::Tensor Args::ts(size_t i) {
  if (i < info_.Length() && (info_[i].IsNumber() || info_[i].IsBoolean() || info_[i].IsBigInt())) {
    at::Tensor w = at::scalar_to_tensor(s(i));
    w.unsafeGetTensorImpl()->set_wrapped_number(true);
    return w;
  }
  return t(i);
}

at::Scalar Args::s(size_t i) {
  if (i >= info_.Length()) fail(i, "a number");
  auto v = info_[i];
  if (v.IsNumber()) {
    // JS has one number type. Integral values become integer scalars (as Python ints do), so
    // int64 + 1 stays int64 while float32 * 0.5 and float32 + 1 stay float32.
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::trunc(d) == d && std::fabs(d) < 9.0e15) return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) {
    bool lossless;
    return at::Scalar(static_cast<int64_t>(v.As<Napi::BigInt>().Int64Value(&lossless)));
  }
  fail(i, "a number, boolean or bigint");
}

c10::optional<at::Scalar> Args::os(size_t i) {
  if (!has(i)) return c10::nullopt;
  return s(i);
}

double Args::d(size_t i) {
  if (i >= info_.Length() || !info_[i].IsNumber()) fail(i, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

c10::optional<double> Args::od(size_t i) {
  if (!has(i)) return c10::nullopt;
  return d(i);
}

int64_t Args::i64(size_t i) {
  if (i < info_.Length() && info_[i].IsBigInt()) {
    bool lossless;
    return info_[i].As<Napi::BigInt>().Int64Value(&lossless);
  }
  double v = d(i);
  if (v != static_cast<double>(static_cast<int64_t>(v))) fail(i, "an integer");
  return static_cast<int64_t>(v);
}

c10::optional<int64_t> Args::oi64(size_t i) {
  if (!has(i)) return c10::nullopt;
  return i64(i);
}

bool Args::b(size_t i) {
  if (i >= info_.Length() || !info_[i].IsBoolean()) fail(i, "a boolean");
  return info_[i].As<Napi::Boolean>().Value();
}

std::string Args::str(size_t i) {
  if (i >= info_.Length() || !info_[i].IsString()) fail(i, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

at::IntArrayRef Args::il(size_t i) {
  if (i >= info_.Length()) fail(i, "an integer array");
  auto v = info_[i];
  std::vector<int64_t> out;
  if (v.IsNumber()) {
    out.push_back(i64(i));
  } else if (v.IsArray()) {
    auto arr = v.As<Napi::Array>();
    out.reserve(arr.Length());
    for (uint32_t k = 0; k < arr.Length(); k++) {
      Napi::Value e = arr.Get(k);
      if (!e.IsNumber()) fail(i, "an integer array");
      double d = e.As<Napi::Number>().DoubleValue();
      if (d != static_cast<double>(static_cast<int64_t>(d))) fail(i, "an integer array");
      out.push_back(static_cast<int64_t>(d));
    }
  } else {
    fail(i, "an integer array");
  }
  lists_.push_back(std::move(out));
  return at::IntArrayRef(lists_.back());
}

at::OptionalIntArrayRef Args::oil(size_t i) {
  if (!has(i)) return c10::nullopt;
  return il(i);
}

std::vector<at::Tensor> Args::tl(size_t i) {
  if (i >= info_.Length() || !info_[i].IsArray()) fail(i, "an array of Tensors");
  auto arr = info_[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); k++) {
    std::string what = std::string(op_) + ": argument " + std::to_string(i) + "[" + std::to_string(k) + "]";
    out.push_back(unwrapHolder(env(), arr.Get(k), what.c_str())->t);
  }
  return out;
}

c10::List<c10::optional<at::Tensor>> Args::otl(size_t i) {
  if (i >= info_.Length() || !info_[i].IsArray()) fail(i, "an array of Tensors or nulls");
  auto arr = info_[i].As<Napi::Array>();
  c10::List<c10::optional<at::Tensor>> out;
  for (uint32_t k = 0; k < arr.Length(); k++) {
    Napi::Value e = arr.Get(k);
    if (e.IsNull() || e.IsUndefined()) {
      out.push_back(c10::nullopt);
    } else {
      std::string what = std::string(op_) + ": argument " + std::to_string(i) + "[" + std::to_string(k) + "]";
      out.push_back(unwrapHolder(env(), e, what.c_str())->t);
    }
  }
  return out;
}

at::ScalarType Args::dt(size_t i) { return parseDtype(str(i)); }

c10::optional<at::ScalarType> Args::odt(size_t i) {
  if (!has(i)) return c10::nullopt;
  return dt(i);
}

at::TensorOptions Args::opts(size_t i) {
  at::TensorOptions o;
  if (has(i)) o = o.dtype(dt(i));
  else o = o.dtype(at::kFloat);
  if (has(i + 1)) o = o.device(parseDevice(str(i + 1)));
  return o;
}

at::MemoryFormat Args::mf(size_t i) {
  if (!has(i)) return at::MemoryFormat::Contiguous;
  std::string s = str(i);
  if (s == "contiguous") return at::MemoryFormat::Contiguous;
  if (s == "channelsLast") return at::MemoryFormat::ChannelsLast;
  if (s == "preserve") return at::MemoryFormat::Preserve;
  fail(i, "'contiguous', 'channelsLast' or 'preserve'");
}

}  // namespace dyad
