// dyad native engine: module init, tensor data in and out, autograd, threads and RNG.
// The ops themselves are in the table in ops.cc; this file holds what is not an ATen op.
#include <torch/csrc/autograd/autograd.h>
#include <ATen/core/grad_mode.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Version.h>
#include <torch/version.h>
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <cstring>

#include "allocator.h"
#include "handle.h"

namespace dyad {
namespace {

void drainReleases(napi_env env);

Napi::Value dispatch(const Napi::CallbackInfo& info) {
  auto* entry = static_cast<const OpEntry*>(info.Data());
  Args a(info, entry->name);
  drainReleases(info.Env());
  return protect(info.Env(), [&] { return entry->fn(a); });
}

/// The bytes behind argument 0 (TypedArray, Buffer, DataView or ArrayBuffer).
struct JsBytes {
  Napi::ArrayBuffer buffer;
  size_t offset = 0;
  size_t length = 0;
  uint8_t* data() { return static_cast<uint8_t*>(buffer.Data()) + offset; }
};

JsBytes jsBytes(Args& a) {
  Napi::Value v = a.raw(0);
  JsBytes b;
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    b = {ta.ArrayBuffer(), ta.ByteOffset(), ta.ByteLength()};
  } else if (v.IsDataView()) {
    auto dv = v.As<Napi::DataView>();
    b = {dv.ArrayBuffer(), dv.ByteOffset(), dv.ByteLength()};
  } else if (v.IsArrayBuffer()) {
    auto ab = v.As<Napi::ArrayBuffer>();
    b = {ab, 0, ab.ByteLength()};
  } else {
    a.fail(0, "an ArrayBuffer, TypedArray or Buffer");
  }
  return b;
}

/// Checks that `shape` of `dtype` covers exactly `length` bytes; `who` names the caller.
void checkByteLength(const char* who, at::IntArrayRef shape, at::ScalarType dtype, size_t length) {
  int64_t numel = 1;
  for (auto s : shape) {
    if (s < 0) throw std::invalid_argument(std::string(who) + ": negative dimension in shape");
    numel *= s;
  }
  size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (need != length) {
    throw std::invalid_argument(std::string(who) + ": shape [" + c10::Join(", ", shape) + "] of " + dtypeName(dtype) + " needs " +
                                std::to_string(need) + " bytes, got " + std::to_string(length));
  }
}

/// Copies bytes from an ArrayBuffer, TypedArray or Buffer into a new CPU tensor
/// of the given dtype and shape. Args: (bytes, dtype, shape).
Napi::Value fromBuffer(Args& a) {
  JsBytes bytes = jsBytes(a);
  auto dtype = a.dt(1);
  auto shape = a.il(2);
  checkByteLength("fromBuffer", shape, dtype, bytes.length);
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (bytes.length) std::memcpy(t.data_ptr(), bytes.data(), bytes.length);
  return wrap(a.env(), t);
}

// ---- zero-copy views of JS memory -----------------------------------------------------
// A tensor made by fromBufferShared views the bytes of a JS ArrayBuffer and holds a strong
// reference to it. libtorch frees storage on whatever thread drops the last reference (the
// autograd engine's, for instance), where no napi call is allowed; so the deleter only queues the
// reference, and the queue is drained on the JS thread of the same environment.
struct PendingRelease {
  napi_env env;
  napi_ref ref;
};
std::mutex gPendingMutex;
std::vector<PendingRelease> gPending;

void drainReleases(napi_env env) {
  std::vector<napi_ref> mine;
  {
    std::lock_guard<std::mutex> lock(gPendingMutex);
    if (gPending.empty()) return;
    auto it = std::remove_if(gPending.begin(), gPending.end(), [&](const PendingRelease& p) {
      if (p.env != env) return false;
      mine.push_back(p.ref);
      return true;
    });
    gPending.erase(it, gPending.end());
  }
  for (napi_ref r : mine) napi_delete_reference(env, r);
}

/// A tensor over the bytes of a TypedArray/ArrayBuffer without copying. Args: (bytes, dtype, shape).
Napi::Value fromBufferShared(Args& a) {
  JsBytes bytes = jsBytes(a);
  auto dtype = a.dt(1);
  auto shape = a.il(2);
  checkByteLength("fromBufferShared", shape, dtype, bytes.length);
  if (bytes.length > 0 && (bytes.offset % c10::elementSize(dtype)) != 0) {
    throw std::invalid_argument("fromBufferShared: the data starts at byte offset " + std::to_string(bytes.offset) +
                                ", not a multiple of the element size; use fromBuffer (copies)");
  }
  napi_env env = a.env();
  napi_ref ref;
  napi_create_reference(env, bytes.buffer, 1, &ref);
  at::Tensor t = at::from_blob(bytes.data(), shape, [env, ref](void*) {
    std::lock_guard<std::mutex> lock(gPendingMutex);
    gPending.push_back({env, ref});
  }, at::TensorOptions().dtype(dtype));
  return wrap(a.env(), t);
}

/// Copies a tensor's elements (row-major, on the CPU) into a new ArrayBuffer.
Napi::Value toBuffer(Args& a) {
  at::Tensor t = a.t(0).detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  size_t len = t.numel() * t.element_size();
  auto ab = Napi::ArrayBuffer::New(a.env(), len);
  if (len) std::memcpy(ab.Data(), t.data_ptr(), len);
  return ab;
}

Napi::Value info(Args& a) {
  const at::Tensor& t = a.t(0);
  auto env = a.env();
  auto out = Napi::Array::New(env, 3);
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) shape.Set(uint32_t(i), Napi::Number::New(env, double(t.size(i))));
  out.Set(uint32_t(0), shape);
  out.Set(uint32_t(1), Napi::String::New(env, dtypeName(t.scalar_type())));
  out.Set(uint32_t(2), Napi::String::New(env, t.device().str()));
  return out;
}

Napi::Value strides(Args& a) {
  const at::Tensor& t = a.t(0);
  auto out = Napi::Array::New(a.env(), t.dim());
  for (int64_t i = 0; i < t.dim(); i++) out.Set(uint32_t(i), Napi::Number::New(a.env(), double(t.stride(i))));
  return out;
}

Napi::Value item(Args& a) {
  const at::Tensor& t = a.t(0);
  if (t.numel() != 1) {
    throw std::invalid_argument("item(): a Tensor with " + std::to_string(t.numel()) +
                                " elements cannot be converted to a number; only one-element tensors can");
  }
  at::Scalar s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(a.env(), s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(a.env(), double(s.toLong()));
  return Napi::Number::New(a.env(), s.toDouble());
}

Napi::Value freeTensor(Args& a) {
  if (a.size() > 0 && a.raw(0).IsObject()) disposeHandle(a.env(), a.raw(0));
  return a.env().Undefined();
}

Napi::Value memory(Args& a) {
  auto out = Napi::Object::New(a.env());
  out.Set("count", Napi::Number::New(a.env(), double(Stats::count.load())));
  out.Set("bytes", Napi::Number::New(a.env(), double(Stats::bytes.load())));
  out.Set("cachedBytes", Napi::Number::New(a.env(), double(cpuCacheIdleBytes())));
  return out;
}

Napi::Value emptyCache(Args& a) {
  emptyCpuCache();
  return a.env().Undefined();
}

// ---- autograd ------------------------------------------------------------------------

Napi::Value backward(Args& a) {
  std::vector<at::Tensor> grads;
  if (a.has(1)) grads.push_back(a.t(1));
  bool create = a.has(3) && a.b(3);
  c10::optional<bool> retain = a.has(2) ? c10::optional<bool>(a.b(2)) : c10::nullopt;
  torch::autograd::backward({a.t(0)}, grads, retain, create);
  return a.env().Undefined();
}

/// torch.autograd.grad(outputs, inputs, gradOutputs?, retainGraph?, createGraph, allowUnused)
Napi::Value autogradGrad(Args& a) {
  std::vector<at::Tensor> gradOut = a.has(2) ? a.tl(2) : std::vector<at::Tensor>{};
  c10::optional<bool> retain = a.has(3) ? c10::optional<bool>(a.b(3)) : c10::nullopt;
  auto grads = torch::autograd::grad(a.tl(0), a.tl(1), gradOut, retain, a.b(4), a.b(5));
  return ret(a.env(), grads);
}

Napi::Value grad(Args& a) { return wrap(a.env(), a.t(0).grad()); }

Napi::Value setGrad(Args& a) {
  at::Tensor t = a.t(0);
  if (a.has(1)) t.mutable_grad() = a.t(1);
  else t.mutable_grad() = at::Tensor();
  return a.env().Undefined();
}

Napi::Value requiresGrad(Args& a) {
  at::Tensor t = a.t(0);
  if (a.has(1)) t.requires_grad_(a.b(1));
  return Napi::Boolean::New(a.env(), t.requires_grad());
}

Napi::Value isLeaf(Args& a) { return Napi::Boolean::New(a.env(), a.t(0).is_leaf()); }

Napi::Value retainGrad(Args& a) {
  a.t(0).retain_grad();
  return a.env().Undefined();
}

/// gradEnabled(enabled?) -> the previous state.
Napi::Value gradEnabled(Args& a) {
  bool prev = at::GradMode::is_enabled();
  if (a.has(0)) at::GradMode::set_enabled(a.b(0));
  return Napi::Boolean::New(a.env(), prev);
}

Napi::Value isContiguous(Args& a) {
  return Napi::Boolean::New(a.env(), a.t(0).is_contiguous(a.mf(1)));
}

Napi::Value sameStorage(Args& a) {
  return Napi::Boolean::New(a.env(), a.t(0).storage().is_alias_of(a.t(1).storage()));
}

// ---- threads, RNG, build info -----------------------------------------------------------

Napi::Value setNumThreads(Args& a) {
  int64_t n = a.i64(0);
  if (n < 1) throw std::invalid_argument("setNumThreads: need at least 1 thread, got " + std::to_string(n));
  at::set_num_threads(static_cast<int>(n));
  return a.env().Undefined();
}

Napi::Value getNumThreads(Args& a) { return Napi::Number::New(a.env(), at::get_num_threads()); }

Napi::Value manualSeed(Args& a) {
  at::manual_seed(static_cast<uint64_t>(a.i64(0)));
  return a.env().Undefined();
}

/// The default CPU generator's state as a uint8 tensor (for checkpoints), or sets it.
Napi::Value rngState(Args& a) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  if (a.has(0)) {
    gen.set_state(a.t(0));
    return a.env().Undefined();
  }
  return wrap(a.env(), gen.get_state());
}

Napi::Value buildInfo(Args& a) {
  auto out = Napi::Object::New(a.env());
  out.Set("torchVersion", Napi::String::New(a.env(), TORCH_VERSION));
  out.Set("config", Napi::String::New(a.env(), at::show_config()));
  out.Set("parallel", Napi::String::New(a.env(), at::get_parallel_info()));
  out.Set("cuda", Napi::Boolean::New(a.env(), at::hasCUDA()));
  out.Set("mkldnn", Napi::Boolean::New(a.env(), at::hasMKLDNN()));
  return out;
}

Napi::Value setErrorClass(Args& a) {
  auto* data = a.env().GetInstanceData<InstanceData>();
  data->errorClass = Napi::Persistent(a.raw(0).As<Napi::Function>());
  return a.env().Undefined();
}

const std::vector<OpEntry> kCore = {
    {"fromBuffer", fromBuffer},     {"fromBufferShared", fromBufferShared}, {"toBuffer", toBuffer},         {"info", info},
    {"strides", strides},           {"item", item},                 {"free", freeTensor},
    {"memory", memory},             {"emptyCache", emptyCache},     {"backward", backward},         {"autogradGrad", autogradGrad},
    {"grad", grad},                 {"setGrad", setGrad},           {"requiresGrad", requiresGrad},
    {"isLeaf", isLeaf},             {"retainGrad", retainGrad},     {"gradEnabled", gradEnabled},
    {"isContiguous", isContiguous}, {"sameStorage", sameStorage},   {"setNumThreads", setNumThreads},
    {"getNumThreads", getNumThreads}, {"manualSeed", manualSeed},   {"rngState", rngState},
    {"buildInfo", buildInfo},       {"setErrorClass", setErrorClass},
};

}  // namespace
const std::vector<OpEntry>& jitTable();  // jit.cc: TorchScript modules
const std::vector<OpEntry>& distTable();  // distributed.cc: torch.distributed, CUDA queries
namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  installAllocators();
  env.SetInstanceData(new InstanceData());
  auto add = [&](const OpEntry& e) {
    exports.Set(e.name, Napi::Function::New(env, dispatch, e.name, const_cast<OpEntry*>(&e)));
  };
  for (const auto& e : kCore) add(e);
  for (const auto& e : jitTable()) add(e);
  for (const auto& e : distTable()) add(e);
  auto names = Napi::Array::New(env);
  uint32_t k = 0;
  for (const auto& e : opTable()) {
    add(e);
    names.Set(k++, Napi::String::New(env, e.name));
  }
  exports.Set("opNames", names);
  return exports;
}

}  // namespace
}  // namespace dyad

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return dyad::Init(env, exports); }
NODE_API_MODULE(dyad_addon, InitAddon)
