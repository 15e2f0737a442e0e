// dyad native engine: tensor handles, argument conversion and error translation.
//
// Every JS tensor owns one heap `at::Tensor` held by a `Holder` wrapped (napi_wrap) in a
// type-tagged plain object. The holder is freed by an explicit `free` (dispose), which also
// removes the wrap and its finalizer, or by the finalizer when the JS object is collected.
// Native bytes are reported to V8 once per
// storage, not per handle: a view shares its base's storage and adds nothing, so code that
// makes many views of large activations does not look to V8 like many large allocations
// (which made it run full garbage collections back to back). The total is reported with
// hysteresis (handle.cc, `account`), so short-lived activations do not trigger collections.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <atomic>
#include <string>
#include <vector>

namespace dyad {

struct Holder {
  at::Tensor t;
  /// Key of the storage this handle counts towards (see wrap); null once freed.
  const void* storage = nullptr;
};

/// Process-wide live-handle accounting (shared by worker threads): handle count, and the
/// bytes of the distinct storages those handles hold.
struct Stats {
  static std::atomic<int64_t> count;
  static std::atomic<int64_t> bytes;
};

/// Per-environment data (main thread and each worker thread have their own).
struct InstanceData {
  Napi::FunctionReference errorClass;  // TorchError, registered from TS
};

at::ScalarType parseDtype(const std::string& s);
const char* dtypeName(at::ScalarType t);
at::Device parseDevice(const std::string& s);

/// Wraps a tensor in a new JS handle (a tagged object with the holder wrapped in it).
Napi::Value wrap(Napi::Env env, at::Tensor t);
/// The tensor behind a JS handle; throws a TypeError naming `what` otherwise.
Holder* unwrapHolder(Napi::Env env, const Napi::Value& v, const char* what);
/// Drops a holder's tensor and its accounting (the holder itself stays allocated).
void freeHolder(Napi::Env env, Holder* h);
/// Frees the tensor behind a handle now and removes the handle's wrap and finalizer, so nothing
/// is left for the garbage collector; a no-op for a handle disposed before.
void disposeHandle(Napi::Env env, const Napi::Value& v);

/// Throws a JS TorchError (or Error before TS registered the class) with `msg`.
[[noreturn]] void throwTorch(Napi::Env env, const std::string& msg);

/// Positional argument reader for one op call. `op` names the op in error messages.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op) : info_(info), op_(op) {}
  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  Napi::Value raw(size_t i) const { return info_[i]; }
  bool has(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined() && !info_[i].IsNull(); }

  const at::Tensor& t(size_t i);                // required tensor
  c10::optional<at::Tensor> ot(size_t i);       // optional tensor (null/undefined)
  at::Tensor ts(size_t i);                      // tensor, or a number wrapped as PyTorch does for Python scalars
  at::Scalar s(size_t i);                       // number | boolean | bigint
  c10::optional<at::Scalar> os(size_t i);
  double d(size_t i);
  c10::optional<double> od(size_t i);
  int64_t i64(size_t i);
  c10::optional<int64_t> oi64(size_t i);
  bool b(size_t i);
  std::string str(size_t i);
  at::IntArrayRef il(size_t i);                 // number[] or a single number
  at::OptionalIntArrayRef oil(size_t i);
  std::vector<at::Tensor> tl(size_t i);
  c10::List<c10::optional<at::Tensor>> otl(size_t i);
  at::ScalarType dt(size_t i);
  c10::optional<at::ScalarType> odt(size_t i);
  at::TensorOptions opts(size_t dtypeIdx);      // dtype at i, device at i+1 (both optional)
  at::MemoryFormat mf(size_t i);

  [[noreturn]] void fail(size_t i, const std::string& expected);

 private:
  const Napi::CallbackInfo& info_;
  const char* op_;
  std::vector<std::vector<int64_t>> lists_;     // keeps IntArrayRef storage alive for the call
};

// Conversion of op results to JS values.
inline Napi::Value ret(Napi::Env env, const at::Tensor& t) { return wrap(env, t); }
Napi::Value ret(Napi::Env env, const std::vector<at::Tensor>& v);
inline Napi::Value ret(Napi::Env env, double v) { return Napi::Number::New(env, v); }
inline Napi::Value ret(Napi::Env env, int64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }
inline Napi::Value ret(Napi::Env env, bool v) { return Napi::Boolean::New(env, v); }
template <typename A, typename B>
Napi::Value ret(Napi::Env env, const std::tuple<A, B>& v) {
  auto arr = Napi::Array::New(env, 2);
  arr.Set(uint32_t(0), ret(env, std::get<0>(v)));
  arr.Set(uint32_t(1), ret(env, std::get<1>(v)));
  return arr;
}
template <typename A, typename B, typename C>
Napi::Value ret(Napi::Env env, const std::tuple<A, B, C>& v) {
  auto arr = Napi::Array::New(env, 3);
  arr.Set(uint32_t(0), ret(env, std::get<0>(v)));
  arr.Set(uint32_t(1), ret(env, std::get<1>(v)));
  arr.Set(uint32_t(2), ret(env, std::get<2>(v)));
  return arr;
}

/// Runs `body`, turning every C++ exception into a JS TorchError (the PROTECT pattern of tch-rs).
template <typename F>
Napi::Value protect(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throwTorch(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throwTorch(env, e.what());
  } catch (...) {
    throwTorch(env, "unknown native error");
  }
}

/// One entry of the op table: a JS name and a function of the positional arguments.
struct OpEntry {
  const char* name;
  Napi::Value (*fn)(Args&);
};
const std::vector<OpEntry>& opTable();

}  // namespace dyad
