// dyad native engine: torch.distributed over libtorch's c10d (ProcessGroupGloo, and
// ProcessGroupNCCL in CUDA builds; TCPStore, FileStore) and CUDA queries; the differentiable collectives and the DDP reducer are in
// distributed_grad.cc, what both share in distributed.h.
//
// - One default process group per process, as torch.distributed's default group.
// - Collectives called from JS (allReduce, allGather, broadcast, barrier, reduceScatter, the DDP
//   reducer's finish) return Promises: the op is enqueued on Gloo's own worker threads and waited
//   for on a libuv pool thread (a Napi::AsyncWorker), so Node's event loop never waits for a peer.
// - Every collective takes a ticket on the calling thread and is enqueued in its turn (Sequencer,
//   distributed.h): Gloo pairs collectives across ranks by enqueue order.
//
// Built only where libtorch's c10d and Gloo's headers are present (Debian: libtorch-dev and
// libgloo-dev); elsewhere every dist function reports "not available" (distAvailable()).
// The 'nccl' backend is built in only when find-libtorch.mjs finds a CUDA libtorch and CUDA's and
// NCCL's headers (it then defines DYAD_WITH_NCCL): tensors live on cuda:LOCAL_RANK, NCCL's wait()
// orders the calling thread's current CUDA stream after the collective (every dyad thread uses the
// default stream), and reading a result on the CPU (.cpu()) waits for it.
#include <torch/cuda.h>

#include "distributed.h"

namespace dyad {
namespace dist {
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

}  // namespace

Napi::Value runAsync(Napi::Env env, std::string what, std::function<void()> run, std::function<Napi::Value(Napi::Env)> done) {
  auto* w = new PromiseWorker(env, std::move(what), std::move(run), std::move(done));
  auto p = w->promise();
  w->Queue();
  return p;
}

namespace {

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
#ifdef DYAD_HAS_NCCL
  out.Set("nccl", Napi::Boolean::New(a.env(), true));
#else
  out.Set("nccl", Napi::Boolean::New(a.env(), false));
#endif
  return out;
}

}  // namespace

#ifdef DYAD_HAS_C10D

namespace {
std::mutex gGroupMutex;
std::shared_ptr<Group> gGroup;
}  // namespace


std::shared_ptr<Group> current(const std::string& op) {
  std::lock_guard<std::mutex> lock(gGroupMutex);
  if (!gGroup) throw std::runtime_error(op + ": the default process group is not initialized; call dist.initProcessGroup() first");
  return gGroup;
}

void checkDevice(const Group& g, const at::Tensor& t, const std::string& op) {
  if (g.device.is_cpu() && !t.device().is_cpu()) {
    throw std::invalid_argument(op + ": the " + g.backend + " backend takes CPU tensors, got one on " + t.device().str() + " (move it with .to('cpu'))");
  }
  if (g.device.is_cuda() && !t.device().is_cuda()) {
    throw std::invalid_argument(op + ": the " + g.backend + " backend takes CUDA tensors, got one on " + t.device().str() +
                                " (move it with .to('" + g.device.str() + "'))");
  }
}

namespace {

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

}  // namespace

namespace {

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
  at::Tensor sent = mine.to(g.device);  // nccl: through this rank's GPU
  std::vector<at::Tensor> outs;
  for (int r = 0; r < g.size; r++) outs.push_back(at::empty_like(sent));
  std::vector<std::vector<at::Tensor>> o{outs};
  std::vector<at::Tensor> in{sent};
  g.pg->allgather(o, in)->wait();
  std::vector<at::Tensor> got;
  for (int r = 0; r < g.size; r++) got.push_back(o[0][r].cpu());  // .cpu() waits for a CUDA stream too
  bool same = true;
  for (int r = 0; r < g.size; r++) same = same && got[r].equal(mine);
  if (same) return;
  std::string list;
  for (int r = 0; r < g.size; r++) list += (r ? ", " : "") + std::string("rank ") + std::to_string(r) + " " + shapeText(got[r]);
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

}  // namespace

/// All-reduce of `t` in place (through a contiguous copy when it is not contiguous), enqueued in
/// `ticket`'s turn (a fresh ticket when none is given: a synchronous caller); waits.
void allReduceNow(Group& g, at::Tensor t, const std::string& op, c10::optional<uint64_t> ticket) {
  at::NoGradGuard noGrad;
  uint64_t turn = ticket ? *ticket : g.seq.take();
  at::Tensor c;
  auto work = g.seq.run(turn, [&] {
    checkDevice(g, t, "allReduce");
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

std::vector<at::Tensor> allGatherNow(Group& g, const at::Tensor& t, const std::string& op, c10::optional<uint64_t> ticket) {
  at::NoGradGuard noGrad;
  uint64_t turn = ticket ? *ticket : g.seq.take();
  std::vector<std::vector<at::Tensor>> o(1);
  auto work = g.seq.run(turn, [&] {
    checkDevice(g, t, op);
    checkSameShape(g, t, op);
    at::Tensor c = t.contiguous();
    for (int r = 0; r < g.size; r++) o[0].push_back(at::empty_like(c));
    std::vector<at::Tensor> in{c};
    return g.pg->allgather(o, in);
  });
  work->wait();
  return o[0];
}

namespace {

/// distInit(backend, store, hostOrPath, port, rank, worldSize, timeoutMs, deviceIndex) -> Promise<void>.
/// store: 'tcp' (TCPStore; rank 0 serves on host:port) or 'file' (FileStore at hostOrPath).
/// backend: 'gloo' (CPU tensors) or, in an addon built with NCCL, 'nccl' (tensors on cuda:deviceIndex).
Napi::Value distInit(Args& a) {
  std::string backend = a.str(0), store = a.str(1), host = a.str(2);
  int port = static_cast<int>(a.i64(3));
  int rank = static_cast<int>(a.i64(4)), size = static_cast<int>(a.i64(5));
  auto timeout = std::chrono::milliseconds(a.i64(6));
  int64_t deviceIndex = a.has(7) ? a.i64(7) : 0;
#if defined(DYAD_HAS_GLOO) && defined(DYAD_HAS_NCCL)
  const char* built = "gloo and nccl are";
#elif defined(DYAD_HAS_GLOO)
  const char* built = "gloo is";
#else
  const char* built = "nccl is; this libtorch ships no gloo/ headers";
#endif
  bool known = false;
#ifdef DYAD_HAS_GLOO
  known = known || backend == "gloo";
#endif
#ifdef DYAD_HAS_NCCL
  known = known || backend == "nccl";
  if (backend == "nccl" && (deviceIndex < 0 || deviceIndex >= static_cast<int64_t>(torch::cuda::device_count()))) {
    throw std::invalid_argument("initProcessGroup: nccl needs a GPU per rank: cuda:" + std::to_string(deviceIndex) + " is not one of the " +
                                std::to_string(torch::cuda::device_count()) + " visible (LOCAL_RANK picks it; check CUDA_VISIBLE_DEVICES)");
  }
#endif
  if (!known) throw std::invalid_argument("initProcessGroup: backend '" + backend + "' is not built into this addon (" + built + ")");
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
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("dyad/default_pg", g->store);
#ifdef DYAD_HAS_NCCL
    if (backend == "nccl") {
      // NCCL's communicators are created lazily, at the first collective, on the tensors' GPU
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      g->device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(deviceIndex));
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, size, opts);
    }
#endif
#ifdef DYAD_HAS_GLOO
    if (backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (store == "file" || host == "127.0.0.1" || host == "localhost" || host == "::1")
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      opts->threads = 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, size, opts);
    }
#endif
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
      checkDevice(*g, t, "broadcast");
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
    checkDevice(*g, out, "reduceScatter");
    for (const auto& t : ins) checkDevice(*g, t, "reduceScatter");
    std::vector<at::Tensor> o{out};
    std::vector<std::vector<at::Tensor>> i{ins};
    c10d::ReduceScatterOptions opts;
    opts.reduceOp = parseOp(op);
    g->seq.run(ticket, [&] { return g->pg->reduce_scatter(o, i, opts); })->wait();
    if (op == "avg") out.div_(g->size);
  });
}

}  // namespace

#else  // no c10d backend headers (Gloo or NCCL): every dist entry point explains itself

Napi::Value unavailable(Args& a) {
  throw std::runtime_error("torch.distributed is not available in this dyad addon: it was built without libtorch's c10d/Gloo headers "
                           "(on Debian: apt-get install libgloo-dev, then npm run build:native)");
}
namespace {
Napi::Value distInfo(Args& a) { return a.env().Null(); }
Napi::Value distDestroy(Args& a) { return a.env().Undefined(); }
}  // namespace
#define distInit unavailable
#define distAllReduce unavailable
#define distAllGather unavailable
#define distBroadcast unavailable
#define distBarrier unavailable
#define distReduceScatter unavailable

#endif

}  // namespace dist

const std::vector<OpEntry>& distTable() {
  static const std::vector<OpEntry> t = [] {
    std::vector<OpEntry> v = {
        {"cudaIsAvailable", dist::cudaIsAvailable},
        {"cudaDeviceCount", dist::cudaDeviceCount},
        {"cudaSynchronize", dist::cudaSynchronize},
        {"distAvailable", dist::distAvailable},
        {"distInit", dist::distInit},
        {"distDestroy", dist::distDestroy},
        {"distInfo", dist::distInfo},
        {"distAllReduce", dist::distAllReduce},
        {"distAllGather", dist::distAllGather},
        {"distBroadcast", dist::distBroadcast},
        {"distBarrier", dist::distBarrier},
        {"distReduceScatter", dist::distReduceScatter},
    };
    for (const auto& e : dist::gradTable()) v.push_back(e);
    return v;
  }();
  return t;
}

}  // namespace dyad
