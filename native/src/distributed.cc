// dyad native engine: torch.distributed over libtorch's c10d (ProcessGroupGloo, TCPStore,
// FileStore), CUDA queries, and the two differentiable collectives that contrastive learning
// needs (SimCLR's GatherLayer, SyncBatchNorm's statistics).
//
// - One default process group per process, as torch.distributed's default group.
// - Collectives called from JS (allReduce, allGather, broadcast, barrier, reduceScatter, the DDP
//   reducer's finish) return Promises: the op is enqueued on Gloo's own worker threads and waited
//   for on a libuv pool thread (a Napi::AsyncWorker), so Node's event loop never waits for a peer.
// - The differentiable collectives (allReduceWithGrad, gatherWithGrad) are C++ autograd Functions
//   that wait synchronously: backward of CPU tensors runs on the calling (JS) thread, so a
//   collective inside backward has to be native, and blocks exactly as long as the op.
// - The DDP reducer registers a post hook on each parameter's gradient accumulator (as c10d's
//   Reducer does): when every gradient of a bucket is ready, the bucket is flattened and its
//   all-reduce starts on Gloo's threads while backward goes on; finish() waits and averages.
//
// Built only where libtorch's c10d and Gloo's headers are present (Debian: libtorch-dev and
// libgloo-dev); elsewhere every dist function reports "not available" (distAvailable()).
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/cuda.h>
#include <chrono>
#include <functional>
#include <memory>
#include <condition_variable>
#include <mutex>

#include "handle.h"

#if defined(__has_include)
#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>) && __has_include(<gloo/config.h>) && !defined(DYAD_NO_DISTRIBUTED)
#define DYAD_HAS_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#endif

namespace dyad {
namespace {

/// A Promise settled from a libuv pool thread: `run` off the JS thread, `done` on it.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::string what, std::function<void()> run, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env, "dyad.distributed"), d_(Napi::Promise::Deferred::New(env)), what_(std::move(what)),
        run_(std::move(run)), done_(std::move(done)) {}
  Napi::Promise promise() { return d_.Promise(); }
  void Execute() override {
    try {
      run_();
    } catch (const c10::Error& e) {
      SetError(what_ + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(what_ + ": " + e.what());
    } catch (...) {
      SetError(what_ + ": unknown native error");
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    try {
      d_.Resolve(done_ ? done_(Env()) : Env().Undefined());
    } catch (const Napi::Error& e) {
      d_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { d_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred d_;
  std::string what_;
  std::function<void()> run_;
  std::function<Napi::Value(Napi::Env)> done_;
};

Napi::Value runAsync(Napi::Env env, std::string what, std::function<void()> run, std::function<Napi::Value(Napi::Env)> done = nullptr) {
  auto* w = new PromiseWorker(env, std::move(what), std::move(run), std::move(done));
  auto p = w->promise();
  w->Queue();
  return p;
}

// ---- CUDA (present in every libtorch; false/0 in CPU builds) ------------------------------

Napi::Value cudaIsAvailable(Args& a) { return Napi::Boolean::New(a.env(), torch::cuda::is_available()); }
Napi::Value cudaDeviceCount(Args& a) { return Napi::Number::New(a.env(), double(torch::cuda::device_count())); }
Napi::Value cudaSynchronize(Args& a) {
  if (!torch::cuda::is_available()) throw std::runtime_error("cuda.synchronize: no CUDA device (this libtorch has no CUDA, or no GPU is visible)");
  torch::cuda::synchronize(a.has(0) ? a.i64(0) : -1);
  return a.env().Undefined();
}

Napi::Value distAvailable(Args& a) {
  auto out = Napi::Object::New(a.env());
#ifdef DYAD_HAS_GLOO
  out.Set("gloo", Napi::Boolean::New(a.env(), true));
#else
  out.Set("gloo", Napi::Boolean::New(a.env(), false));
#endif
  out.Set("nccl", Napi::Boolean::New(a.env(), false));  // not built: dyad's NCCL path is unverified
  return out;
}

#ifdef DYAD_HAS_GLOO

/**
 * Gloo pairs the ranks' collectives by the order they are enqueued, so every rank must enqueue in
 * program order. Collectives started from JS wait on libuv's pool, where several may run at once
 * (`Promise.all` of all-reduces): each takes a ticket on the calling thread, in program order, and
 * enqueues only in its turn; waiting for the result happens outside the turn, so the ops still
 * overlap in Gloo. The synchronous ones (autograd Functions, DDP hooks) take their turn the same way.
 */
class Sequencer {
 public:
  uint64_t take() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_++;
  }
  /// Runs `f` (which enqueues) in `ticket`'s turn; the turn passes on even when `f` throws.
  template <typename F>
  auto run(uint64_t ticket, F&& f) -> decltype(f()) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return turn_ == ticket; });
    }
    struct Pass {
      Sequencer* s;
      ~Pass() {
        std::lock_guard<std::mutex> lock(s->mu_);
        s->turn_++;
        s->cv_.notify_all();
      }
    } pass{this};
    return f();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ = 0;
  uint64_t turn_ = 0;
};

struct Group {
  Sequencer seq;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  int rank = 0;
  int size = 1;
  std::string backend;
};
std::mutex gGroupMutex;
std::shared_ptr<Group> gGroup;

std::shared_ptr<Group> current(const std::string& op) {
  std::lock_guard<std::mutex> lock(gGroupMutex);
  if (!gGroup) throw std::runtime_error(op + ": the default process group is not initialized; call dist.initProcessGroup() first");
  return gGroup;
}

std::string where(const Group& g, const std::string& op) { return "rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + ", " + op; }

c10d::ReduceOp parseOp(const std::string& s) {
  if (s == "sum" || s == "avg") return c10d::ReduceOp::SUM;
  if (s == "product") return c10d::ReduceOp::PRODUCT;
  if (s == "min") return c10d::ReduceOp::MIN;
  if (s == "max") return c10d::ReduceOp::MAX;
  if (s == "band") return c10d::ReduceOp::BAND;
  if (s == "bor") return c10d::ReduceOp::BOR;
  if (s == "bxor") return c10d::ReduceOp::BXOR;
  throw std::invalid_argument("unknown reduce op '" + s + "' (sum, avg, product, min, max, band, bor, bxor)");
}

void checkCpu(const at::Tensor& t, const std::string& op) {
  if (!t.device().is_cpu()) throw std::invalid_argument(op + ": the gloo backend takes CPU tensors, got one on " + t.device().str());
}

/// Runs `f`, rethrowing a failure with the rank and the op in front (errors raised inside backward
/// reach JS through the autograd engine, past the TS layer's own labelling).
template <typename F>
auto labelled(const std::string& op, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const c10::Error& e) {
    auto g = current(op);
    throw std::runtime_error(where(*g, op) + ": " + e.what_without_backtrace());
  } catch (const std::invalid_argument&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (msg.rfind("rank ", 0) == 0) throw;
    auto g = current(op);
    throw std::runtime_error(where(*g, op) + ": " + msg);
  }
}

std::string shapeText(const at::Tensor& sig) {
  auto s = sig.accessor<int64_t, 1>();
  std::string out = std::string(dtypeName(static_cast<at::ScalarType>(s[0]))) + " [";
  for (int64_t i = 0; i < s[1]; i++) out += (i ? ", " : "") + std::to_string(s[2 + i]);
  return out + "]";
}

/// Gloo aborts the process (gloo::EnforceNotMet on its transport thread) when the ranks pass
/// tensors of different sizes, so where sizes can legitimately differ (allGather of a batch, the
/// last one of an epoch) every rank's dtype and shape are gathered and compared first.
void checkSameShape(Group& g, const at::Tensor& t, const std::string& op) {
  if (g.size == 1) return;
  constexpr int64_t kMaxDim = 8;
  if (t.dim() > kMaxDim) return;
  at::Tensor mine = at::full({kMaxDim + 2}, -1, at::kLong);
  auto m = mine.accessor<int64_t, 1>();
  m[0] = static_cast<int64_t>(t.scalar_type());
  m[1] = t.dim();
  for (int64_t i = 0; i < t.dim(); i++) m[2 + i] = t.size(i);
  std::vector<at::Tensor> outs;
  for (int r = 0; r < g.size; r++) outs.push_back(at::empty_like(mine));
  std::vector<std::vector<at::Tensor>> o{outs};
  std::vector<at::Tensor> in{mine};
  g.pg->allgather(o, in)->wait();
  bool same = true;
  for (int r = 0; r < g.size; r++) same = same && o[0][r].equal(mine);
  if (same) return;
  std::string list;
  for (int r = 0; r < g.size; r++) list += (r ? ", " : "") + std::string("rank ") + std::to_string(r) + " " + shapeText(o[0][r]);
  throw std::invalid_argument(op + ": every rank must pass the same dtype and shape, got " + list +
                              " (for batches: drop the last incomplete batch, or pad it, as DistributedSampler does)");
}

bool debugDetail() {
  static const bool detail = [] {
    const char* v = std::getenv("TORCH_DISTRIBUTED_DEBUG");
    return v != nullptr && std::string(v) == "DETAIL";
  }();
  return detail;
}

/// All-reduce of `t` in place (through a contiguous copy when it is not contiguous), enqueued in
/// `ticket`'s turn (a fresh ticket when none is given: a synchronous caller); waits.
void allReduceNow(Group& g, at::Tensor t, const std::string& op, c10::optional<uint64_t> ticket = c10::nullopt) {
  at::NoGradGuard noGrad;
  uint64_t turn = ticket ? *ticket : g.seq.take();
  at::Tensor c;
  auto work = g.seq.run(turn, [&] {
    checkCpu(t, "allReduce");
    if (debugDetail()) checkSameShape(g, t, "allReduce");
    c = t.is_contiguous() ? t : t.contiguous();
    c10d::AllreduceOptions o;
    o.reduceOp = parseOp(op);
    std::vector<at::Tensor> v{c};
    return g.pg->allreduce(v, o);
  });
  work->wait();
  if (op == "avg") c.div_(g.size);
  if (!c.is_same(t)) t.copy_(c);
}

std::vector<at::Tensor> allGatherNow(Group& g, const at::Tensor& t, const std::string& op = "allGather",
                                     c10::optional<uint64_t> ticket = c10::nullopt) {
  at::NoGradGuard noGrad;
  uint64_t turn = ticket ? *ticket : g.seq.take();
  std::vector<std::vector<at::Tensor>> o(1);
  auto work = g.seq.run(turn, [&] {
    checkCpu(t, op);
    checkSameShape(g, t, op);
    at::Tensor c = t.contiguous();
    for (int r = 0; r < g.size; r++) o[0].push_back(at::empty_like(c));
    std::vector<at::Tensor> in{c};
    return g.pg->allgather(o, in);
  });
  work->wait();
  return o[0];
}

/// distInit(backend, store, hostOrPath, port, rank, worldSize, timeoutMs) -> Promise<void>.
/// store: 'tcp' (TCPStore; rank 0 serves on host:port) or 'file' (FileStore at hostOrPath).
Napi::Value distInit(Args& a) {
  std::string backend = a.str(0), store = a.str(1), host = a.str(2);
  int port = static_cast<int>(a.i64(3));
  int rank = static_cast<int>(a.i64(4)), size = static_cast<int>(a.i64(5));
  auto timeout = std::chrono::milliseconds(a.i64(6));
  if (backend != "gloo") throw std::invalid_argument("initProcessGroup: backend '" + backend + "' is not built into this addon (gloo is)");
  if (size < 1 || rank < 0 || rank >= size) {
    throw std::invalid_argument("initProcessGroup: rank " + std::to_string(rank) + " is not in [0, worldSize=" + std::to_string(size) + ")");
  }
  {
    std::lock_guard<std::mutex> lock(gGroupMutex);
    if (gGroup) throw std::runtime_error("initProcessGroup: the default process group is already initialized; call dist.destroyProcessGroup() first");
  }
  std::string what = "initProcessGroup (rank " + std::to_string(rank) + " of " + std::to_string(size) + ", " + store + ")";
  return runAsync(a.env(), what, [=] {
    auto g = std::make_shared<Group>();
    g->rank = rank;
    g->size = size;
    g->backend = backend;
    if (store == "tcp") {
      c10d::TCPStoreOptions o;
      o.port = static_cast<std::uint16_t>(port);
      o.isServer = rank == 0;
      o.numWorkers = static_cast<std::size_t>(size);
      o.waitWorkers = true;
      o.timeout = timeout;
      g->store = c10::make_intrusive<c10d::TCPStore>(host, o);
    } else if (store == "file") {
      g->store = c10::make_intrusive<c10d::FileStore>(host, size);
      g->store->setTimeout(timeout);
    } else {
      throw std::invalid_argument("unknown store '" + store + "' (tcp, file)");
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (store == "file" || host == "127.0.0.1" || host == "localhost" || host == "::1")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("dyad/default_pg", g->store);
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, size, opts);
    std::lock_guard<std::mutex> lock(gGroupMutex);
    if (gGroup) throw std::runtime_error("the default process group was initialized meanwhile");
    gGroup = g;
  });
}

Napi::Value distDestroy(Args& a) {
  std::shared_ptr<Group> g;
  {
    std::lock_guard<std::mutex> lock(gGroupMutex);
    g.swap(gGroup);
  }
  g.reset();  // joins Gloo's threads; the store (and a TCPStore server) goes with the last reference
  return a.env().Undefined();
}

Napi::Value distInfo(Args& a) {
  std::lock_guard<std::mutex> lock(gGroupMutex);
  if (!gGroup) return a.env().Null();
  auto out = Napi::Object::New(a.env());
  out.Set("rank", Napi::Number::New(a.env(), gGroup->rank));
  out.Set("worldSize", Napi::Number::New(a.env(), gGroup->size));
  out.Set("backend", Napi::String::New(a.env(), gGroup->backend));
  return out;
}

/// distAllReduce(t, op) -> Promise<void>: in place.
Napi::Value distAllReduce(Args& a) {
  auto g = current("allReduce");
  at::Tensor t = a.t(0);
  std::string op = a.str(1);
  parseOp(op);
  uint64_t ticket = g->seq.take();
  return runAsync(a.env(), where(*g, "allReduce"), [g, t, op, ticket] { allReduceNow(*g, t, op, ticket); });
}

/// distAllGather(t) -> Promise<Handle[]>: one tensor per rank.
Napi::Value distAllGather(Args& a) {
  auto g = current("allGather");
  at::Tensor t = a.t(0);
  auto out = std::make_shared<std::vector<at::Tensor>>();
  uint64_t ticket = g->seq.take();
  return runAsync(a.env(), where(*g, "allGather"), [g, t, out, ticket] { *out = allGatherNow(*g, t, "allGather", ticket); },
                  [out](Napi::Env env) { return ret(env, *out); });
}

/// distBroadcast(t, src) -> Promise<void>: in place.
Napi::Value distBroadcast(Args& a) {
  auto g = current("broadcast");
  at::Tensor t = a.t(0);
  int64_t src = a.i64(1);
  if (src < 0 || src >= g->size) throw std::invalid_argument("broadcast: src " + std::to_string(src) + " is not a rank of [0, " + std::to_string(g->size) + ")");
  uint64_t ticket = g->seq.take();
  return runAsync(a.env(), where(*g, "broadcast"), [g, t, src, ticket] {
    at::NoGradGuard noGrad;
    at::Tensor c;
    auto work = g->seq.run(ticket, [&] {
      checkCpu(t, "broadcast");
      if (debugDetail()) checkSameShape(*g, t, "broadcast");
      c = t.is_contiguous() ? t : t.contiguous();
      c10d::BroadcastOptions o;
      o.rootRank = src;
      std::vector<at::Tensor> v{c};
      return g->pg->broadcast(v, o);
    });
    work->wait();
    if (!c.is_same(t)) t.copy_(c);
  });
}

Napi::Value distBarrier(Args& a) {
  auto g = current("barrier");
  uint64_t ticket = g->seq.take();
  return runAsync(a.env(), where(*g, "barrier"), [g, ticket] { g->seq.run(ticket, [&] { return g->pg->barrier(); })->wait(); });
}

/// distReduceScatter(output, inputs[], op) -> Promise<void>: output = reduce over ranks of inputs[rank].
Napi::Value distReduceScatter(Args& a) {
  auto g = current("reduceScatter");
  at::Tensor out = a.t(0);
  auto ins = a.tl(1);
  std::string op = a.str(2);
  parseOp(op);
  uint64_t ticket = g->seq.take();
  return runAsync(a.env(), where(*g, "reduceScatter"), [g, out, ins, op, ticket] {
    at::NoGradGuard noGrad;
    std::vector<at::Tensor> o{out};
    std::vector<std::vector<at::Tensor>> i{ins};
    c10d::ReduceScatterOptions opts;
    opts.reduceOp = parseOp(op);
    g->seq.run(ticket, [&] { return g->pg->reduce_scatter(o, i, opts); })->wait();
    if (op == "avg") out.div_(g->size);
  });
}

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
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
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
    checkCpu(p, "DistributedDataParallel");
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

#else  // no c10d/Gloo headers: every dist entry point explains itself

[[noreturn]] Napi::Value unavailable(Args& a) {
  throw std::runtime_error("torch.distributed is not available in this dyad addon: it was built without libtorch's c10d/Gloo headers "
                           "(on Debian: apt-get install libgloo-dev, then npm run build:native)");
}
Napi::Value distInfo(Args& a) { return a.env().Null(); }
Napi::Value distDestroy(Args& a) { return a.env().Undefined(); }
#define distInit unavailable
#define distAllReduce unavailable
#define distAllGather unavailable
#define distBroadcast unavailable
#define distBarrier unavailable
#define distReduceScatter unavailable
#define distAllReduceWithGrad unavailable
#define distGatherWithGrad unavailable
#define distReducerNew unavailable
#define distReducerFinish unavailable
#define distReducerEnable unavailable
#define distReducerInfo unavailable
#define distReducerFree unavailable

#endif

}  // namespace

const std::vector<OpEntry>& distTable() {
  static const std::vector<OpEntry> t = {
      {"cudaIsAvailable", cudaIsAvailable},
      {"cudaDeviceCount", cudaDeviceCount},
      {"cudaSynchronize", cudaSynchronize},
      {"distAvailable", distAvailable},
      {"distInit", distInit},
      {"distDestroy", distDestroy},
      {"distInfo", distInfo},
      {"distAllReduce", distAllReduce},
      {"distAllGather", distAllGather},
      {"distBroadcast", distBroadcast},
      {"distBarrier", distBarrier},
      {"distReduceScatter", distReduceScatter},
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

}  // namespace dyad
