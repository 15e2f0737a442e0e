// dyad native engine: TorchScript modules (torch.jit.trace / torch.jit.script / Ultralytics'
// `export format=torchscript`) loaded with torch::jit::load, called, trained and saved.
// A module lives in a type-tagged napi External; its parameters and buffers come out as tensor
// handles that share the module's own TensorImpls, so gradients of a forward land in their
// .grad and in-place optimizer updates change the module itself.
#include <torch/script.h>
#include <torch/csrc/jit/serialization/import.h>

#include "handle.h"

namespace dyad {
namespace {

const napi_type_tag kJitTag = {0x6479616a69746d6fULL, 0x64756c6531303032ULL};

struct JitHolder {
  torch::jit::Module m;
};

torch::jit::Module& jit(Args& a, size_t i) {
  Napi::Value v = a.raw(i);
  if (v.IsExternal()) {
    auto ext = v.As<Napi::External<JitHolder>>();
    if (ext.CheckTypeTag(&kJitTag)) return ext.Data()->m;
  }
  throw Napi::TypeError::New(a.env(), "expected a TorchScript module handle");
}

Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return wrap(env, v.toTensor());
  if (v.isTuple() || v.isList() || v.isTensorList()) {
    std::vector<c10::IValue> items;
    if (v.isTuple()) for (const auto& x : v.toTupleRef().elements()) items.push_back(x);
    else for (const auto& x : v.toListRef()) items.push_back(x);
    auto arr = Napi::Array::New(env, items.size());
    for (size_t k = 0; k < items.size(); k++) arr.Set(uint32_t(k), fromIValue(env, items[k]));
    return arr;
  }
  if (v.isGenericDict()) {
    // a dict is an object with a null prototype: tensor handles are plain objects too (handle.cc)
    auto obj = Napi::Object::New(env);
    Napi::Object objectCtor = env.Global().Get("Object").As<Napi::Object>();
    objectCtor.Get("setPrototypeOf").As<Napi::Function>().Call(objectCtor, {obj, env.Null()});
    for (const auto& kv : v.toGenericDict()) {
      if (!kv.key().isString()) throw std::runtime_error("TorchScript forward returned a dict with non-string keys");
      obj.Set(kv.key().toStringRef(), fromIValue(env, kv.value()));
    }
    return obj;
  }
  if (v.isNone()) return env.Null();
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  throw std::runtime_error(std::string("TorchScript forward returned a ") + v.tagKind() + ", which dyad does not convert (tensors, tuples, lists, dicts, numbers)");
}

/// jitLoad(path) → module handle (on the CPU).
Napi::Value jitLoad(Args& a) {
  auto* h = new JitHolder{torch::jit::load(a.str(0), c10::Device(c10::kCPU))};
  auto ext = Napi::External<JitHolder>::New(a.env(), h, [](Napi::Env, JitHolder* p) { delete p; });
  ext.TypeTag(&kJitTag);
  return ext;
}

/// jitForward(module, tensors[]) → tensor, or an array/object of them.
Napi::Value jitForward(Args& a) {
  auto& m = jit(a, 0);
  std::vector<c10::IValue> inputs;
  for (auto& t : a.tl(1)) inputs.emplace_back(t);
  return fromIValue(a.env(), m.forward(inputs));
}

Napi::Value namedTensors(Napi::Env env, bool params, torch::jit::Module& m) {
  auto arr = Napi::Array::New(env);
  uint32_t k = 0;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    auto pair = Napi::Array::New(env, 2);
    pair.Set(uint32_t(0), Napi::String::New(env, name));
    pair.Set(uint32_t(1), wrap(env, t));
    arr.Set(k++, pair);
  };
  if (params) for (const auto& p : m.named_parameters(true)) add(p.name, p.value);
  else for (const auto& b : m.named_buffers(true)) add(b.name, b.value);
  return arr;
}

/// jitNamedParameters(module) → [name, tensor][] (the module's own tensors, not copies).
Napi::Value jitNamedParameters(Args& a) { return namedTensors(a.env(), true, jit(a, 0)); }
/// jitNamedBuffers(module) → [name, tensor][].
Napi::Value jitNamedBuffers(Args& a) { return namedTensors(a.env(), false, jit(a, 0)); }

/// jitTrain(module, on): train/eval of the module and every submodule.
Napi::Value jitTrain(Args& a) {
  jit(a, 0).train(a.b(1));
  return a.env().Undefined();
}
Napi::Value jitIsTraining(Args& a) { return Napi::Boolean::New(a.env(), jit(a, 0).is_training()); }

/// jitSave(module, path): the module (with its current weights) as a TorchScript archive.
Napi::Value jitSave(Args& a) {
  jit(a, 0).save(a.str(1));
  return a.env().Undefined();
}

}  // namespace

const std::vector<OpEntry>& jitTable() {
  static const std::vector<OpEntry> t = {
      {"jitLoad", jitLoad},         {"jitForward", jitForward},   {"jitNamedParameters", jitNamedParameters},
      {"jitNamedBuffers", jitNamedBuffers}, {"jitTrain", jitTrain}, {"jitIsTraining", jitIsTraining},
      {"jitSave", jitSave},
  };
  return t;
}

}  // namespace dyad
