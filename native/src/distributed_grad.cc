// dyad native engine: the differentiable collectives and the DDP gradient reducer.
//
// - allReduceWithGrad, gatherWithGrad: C++ autograd Functions that wait synchronously: backward of
//   CPU tensors runs on the calling (JS) thread, so a collective inside backward has to be native,
//   and blocks exactly as long as the op.
// - The DDP reducer registers a post hook on each parameter's gradient accumulator (as c10d's
//   Reducer does): when every gradient of a bucket is ready, the bucket is flattened and its
//   all-reduce starts on Gloo's threads while backward goes on; finish() waits and averages.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>

#include "distributed.h"

namespace dyad {
namespace dist {
namespace {

#ifdef DYAD_HAS_C10D

// ---- differentiable collectives (autograd Functions; backward on the caller's thread) ------

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// y = sum over ranks of x; dL/dx = sum over ranks of dL/dy (every rank's loss depends on y).
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(AutogradContext*, const at::Tensor& x) {
    auto g = current("allReduceWithGrad");
    at::Tensor y = x.clone(at::MemoryFormat::Contiguous);
    labelled("allReduceWithGrad", [&] { allReduceNow(*g, y, "sum"); });
    return y;
  }
  static variable_list backward(AutogradContext*, variable_list grads) {
    auto g = current("allReduceWithGrad (backward)");
    at::Tensor gy = grads[0].clone(at::MemoryFormat::Contiguous);
    labelled("allReduceWithGrad (backward)", [&] { allReduceNow(*g, gy, "sum"); });
    return {gy};
  }
};

/// GatherLayer (SimCLR, lightly): y = cat of every rank's x along dim 0; backward all-reduces the
/// gradient of y (sum) and returns this rank's rows. x: [n, ...] on every rank -> y: [worldSize*n, ...].
struct GatherWithGrad : public torch::autograd::Function<GatherWithGrad> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    auto g = current("gatherWithGrad");
    ctx->saved_data["n"] = x.size(0);
    return at::cat(labelled("gatherWithGrad", [&] { return allGatherNow(*g, x, "gatherWithGrad"); }), 0);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto g = current("gatherWithGrad (backward)");
    int64_t n = ctx->saved_data["n"].toInt();
    at::Tensor gy = grads[0].clone(at::MemoryFormat::Contiguous);
    labelled("gatherWithGrad (backward)", [&] { allReduceNow(*g, gy, "sum"); });
    return {gy.narrow(0, g->rank * n, n)};
  }
};

Napi::Value distAllReduceWithGrad(Args& a) { return wrap(a.env(), AllReduceSum::apply(a.t(0))); }
Napi::Value distGatherWithGrad(Args& a) {
  const at::Tensor& x = a.t(0);
  if (x.dim() == 0) throw std::invalid_argument("gatherWithGrad: needs a tensor with a batch dimension, got a scalar");
  return wrap(a.env(), GatherWithGrad::apply(x));
}

// ---- the DDP reducer --------------------------------------------------------------------

const napi_type_tag kReducerTag = {0x6479616472656475ULL, 0x6365723233613031ULL};

struct Reducer {
  struct Bucket {
    std::vector<size_t> params;
    std::vector<int64_t> offsets;
    at::Tensor flat;
    size_t ready = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::shared_ptr<Group> g;
  std::vector<at::Tensor> params;
  // the parameters' AccumulateGrad nodes, kept alive for their hooks (a shared_ptr in libtorch 1.13, an intrusive_ptr in later ones)
  std::vector<decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()))> accumulators;
  std::vector<Bucket> buckets;
  std::vector<size_t> bucketOf;
  std::vector<bool> seen;
  bool enabled = true;
  bool repeated = false;  // a gradient arrived twice before finish(): a second backward without sync
  int64_t hookLaunches = 0;  // buckets started by the hooks (during backward), over the reducer's life
  int64_t finishes = 0;
  std::mutex mu;

  /// Flattens the bucket's gradients (zeros for a missing one) and starts its all-reduce.
  void launch(Bucket& b) {
    b.work = g->seq.run(g->seq.take(), [&] { return enqueue(b); });
  }
  c10::intrusive_ptr<c10d::Work> enqueue(Bucket& b) {
    at::NoGradGuard noGrad;
    for (size_t k = 0; k < b.params.size(); k++) {
      const at::Tensor& p = params[b.params[k]];
      at::Tensor dst = b.flat.narrow(0, b.offsets[k], p.numel());
      if (p.grad().defined()) dst.copy_(p.grad().reshape(-1));
      else dst.zero_();
    }
    std::vector<at::Tensor> v{b.flat};
    return g->pg->allreduce(v);
  }
  void hook(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!enabled) return;
    if (seen[i]) {
      repeated = true;
      return;
    }
    seen[i] = true;
    Bucket& b = buckets[bucketOf[i]];
    if (++b.ready == b.params.size() && !b.work) {
      launch(b);
      hookLaunches++;
    }
  }
  /// Starts the buckets not started yet (in order), waits for all, writes grad = mean over ranks.
  void finish(uint64_t ticket) {
    std::lock_guard<std::mutex> lock(mu);
    at::NoGradGuard noGrad;
    try {
      g->seq.run(ticket, [&] {
        for (auto& b : buckets) if (!b.work) b.work = enqueue(b);
        return 0;
      });
      for (auto& b : buckets) b.work->wait();
    } catch (...) {
      reset();
      throw;
    }
    if (repeated) {
      reset();
      throw std::runtime_error(
          "backward ran more than once since the last syncGradients(): the buckets were all-reduced with the first pass's gradients. "
          "Accumulate gradients inside ddp.noSync(), or call syncGradients() after every backward");
    }
    for (auto& b : buckets) {
      b.flat.div_(g->size);
      for (size_t k = 0; k < b.params.size(); k++) {
        at::Tensor p = params[b.params[k]];
        at::Tensor src = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
        if (p.grad().defined()) p.mutable_grad().copy_(src);
        else p.mutable_grad() = src.clone();
      }
    }
    finishes++;
    reset();
  }
  void reset() {
    for (auto& b : buckets) {
      b.ready = 0;
      b.work.reset();
    }
    std::fill(seen.begin(), seen.end(), false);
    repeated = false;
  }
};

struct ReducerHolder {
  std::shared_ptr<Reducer> r;
};

std::shared_ptr<Reducer> reducer(Args& a, size_t i) {
  Napi::Value v = a.raw(i);
  if (v.IsExternal()) {
    auto ext = v.As<Napi::External<ReducerHolder>>();
    if (ext.CheckTypeTag(&kReducerTag) && ext.Data()->r) return ext.Data()->r;
  }
  throw Napi::TypeError::New(a.env(), "expected a live DDP reducer handle");
}

/// distReducerNew(params[], bucketCapBytes, overlap) -> reducer. Buckets take the parameters in
/// reverse order (the order backward produces their gradients), one dtype per bucket.
Napi::Value distReducerNew(Args& a) {
  auto r = std::make_shared<Reducer>();
  r->g = current("DistributedDataParallel");
  r->params = a.tl(0);
  int64_t cap = a.i64(1);
  bool overlap = a.b(2);
  size_t n = r->params.size();
  r->bucketOf.assign(n, 0);
  r->seen.assign(n, false);
  int64_t bytes = 0;
  for (size_t j = n; j-- > 0;) {
    const at::Tensor& p = r->params[j];
    checkDevice(*r->g, p, "DistributedDataParallel");
    if (!p.requires_grad() || !p.is_leaf()) throw std::invalid_argument("DistributedDataParallel: parameter " + std::to_string(j) + " is not a leaf that requires grad");
    int64_t nb = p.numel() * p.element_size();
    bool fresh = r->buckets.empty() || bytes + nb > cap ||
                 r->params[r->buckets.back().params.back()].scalar_type() != p.scalar_type();
    if (fresh) {
      r->buckets.emplace_back();
      bytes = 0;
    }
    auto& b = r->buckets.back();
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + r->params[b.params.back()].numel());
    b.params.push_back(j);
    bytes += nb;
    r->bucketOf[j] = r->buckets.size() - 1;
  }
  for (auto& b : r->buckets) {
    const at::Tensor& last = r->params[b.params.back()];
    b.flat = at::zeros({b.offsets.back() + last.numel()}, last.options().requires_grad(false));
  }
  if (overlap) {
    std::weak_ptr<Reducer> weak = r;
    for (size_t j = 0; j < n; j++) {
      auto acc = torch::autograd::impl::grad_accumulator(r->params[j]);
      acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [weak, j](const variable_list& outputs, const variable_list&) {
            if (auto self = weak.lock()) self->hook(j);
            return outputs;
          }));
      r->accumulators.push_back(std::move(acc));
    }
  }
  auto ext = Napi::External<ReducerHolder>::New(a.env(), new ReducerHolder{r}, [](Napi::Env, ReducerHolder* h) { delete h; });
  ext.TypeTag(&kReducerTag);
  return ext;
}

Napi::Value distReducerFinish(Args& a) {
  auto r = reducer(a, 0);
  uint64_t ticket = r->g->seq.take();
  return runAsync(a.env(), where(*r->g, "DistributedDataParallel gradient all-reduce"), [r, ticket] { r->finish(ticket); });
}

Napi::Value distReducerEnable(Args& a) {
  auto r = reducer(a, 0);
  std::lock_guard<std::mutex> lock(r->mu);
  r->enabled = a.b(1);
  if (!r->enabled) r->reset();
  return a.env().Undefined();
}

/// [bucket count, bytes of the largest bucket, buckets started during backward, synced steps]
Napi::Value distReducerInfo(Args& a) {
  auto r = reducer(a, 0);
  std::lock_guard<std::mutex> lock(r->mu);
  auto out = Napi::Array::New(a.env(), 4);
  out.Set(uint32_t(2), Napi::Number::New(a.env(), double(r->hookLaunches)));
  out.Set(uint32_t(3), Napi::Number::New(a.env(), double(r->finishes)));
  int64_t big = 0;
  for (auto& b : r->buckets) big = std::max<int64_t>(big, b.flat.numel() * b.flat.element_size());
  out.Set(uint32_t(0), Napi::Number::New(a.env(), double(r->buckets.size())));
  out.Set(uint32_t(1), Napi::Number::New(a.env(), double(big)));
  return out;
}

Napi::Value distReducerFree(Args& a) {
  Napi::Value v = a.raw(0);
  if (v.IsExternal()) {
    auto ext = v.As<Napi::External<ReducerHolder>>();
    if (ext.CheckTypeTag(&kReducerTag)) ext.Data()->r.reset();
  }
  return a.env().Undefined();
}

#else

#define distAllReduceWithGrad unavailable
#define distGatherWithGrad unavailable
#define distReducerNew unavailable
#define distReducerFinish unavailable
#define distReducerEnable unavailable
#define distReducerInfo unavailable
#define distReducerFree unavailable

#endif

}  // namespace

const std::vector<OpEntry>& gradTable() {
  static const std::vector<OpEntry> t = {
      {"distAllReduceWithGrad", distAllReduceWithGrad},
      {"distGatherWithGrad", distGatherWithGrad},
      {"distReducerNew", distReducerNew},
      {"distReducerFinish", distReducerFinish},
      {"distReducerEnable", distReducerEnable},
      {"distReducerInfo", distReducerInfo},
      {"distReducerFree", distReducerFree},
  };
  return t;
}

}  // namespace dist
}  // namespace dyad
