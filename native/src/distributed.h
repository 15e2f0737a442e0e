// dyad native engine: what distributed.cc (process group, collectives) and distributed_grad.cc
// (differentiable collectives, the DDP reducer) share. See distributed.cc for the design.
#pragma once
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "handle.h"

// c10d is built in when libtorch has the headers of at least one backend: Gloo (CPU tensors; Debian's
// libtorch with libgloo-dev, most pip wheels) and/or NCCL (CUDA tensors: only when the build found a
// CUDA libtorch and the CUDA and NCCL headers, find-libtorch.mjs then defines DYAD_WITH_NCCL;
// ProcessGroupNCCL.hpp is empty without USE_C10D_NCCL). Some CUDA wheels ship no gloo/ headers:
// such a build has nccl alone.
#if defined(__has_include) && !defined(DYAD_NO_DISTRIBUTED)
#if __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>) && __has_include(<gloo/config.h>)
#define DYAD_HAS_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO 1
#endif
#endif
#if defined(DYAD_WITH_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#define DYAD_HAS_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#endif
#if defined(DYAD_HAS_GLOO) || defined(DYAD_HAS_NCCL)
#define DYAD_HAS_C10D 1
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if __has_include(<torch/csrc/distributed/c10d/Backend.hpp>)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#define DYAD_HAS_C10D_BACKEND 1
#endif
#ifdef DYAD_HAS_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef DYAD_HAS_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif
#endif

namespace dyad {
namespace dist {

/// A Promise settled from a libuv pool thread: `run` off the JS thread, `done` (if any) on it.
Napi::Value runAsync(Napi::Env env, std::string what, std::function<void()> run, std::function<Napi::Value(Napi::Env)> done = nullptr);

/// distGradTable (distributed_grad.cc): allReduceWithGrad, gatherWithGrad, the DDP reducer.
const std::vector<OpEntry>& gradTable();

#ifdef DYAD_HAS_C10D

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

/**
 * The class both ProcessGroupGloo and ProcessGroupNCCL derive from, whose virtual collectives
 * (allreduce, allgather, broadcast, barrier, reduce_scatter) dyad calls: c10d::ProcessGroup in
 * libtorch 1.13, c10d::Backend from 2.0 (where ProcessGroup became a dispatcher over backends).
 */
#ifdef DYAD_HAS_GLOO
using SomeBackend = c10d::ProcessGroupGloo;
#else
using SomeBackend = c10d::ProcessGroupNCCL;
#endif
#ifdef DYAD_HAS_C10D_BACKEND
using CommBackend = std::conditional_t<std::is_base_of<c10d::Backend, SomeBackend>::value, c10d::Backend, c10d::ProcessGroup>;
#else
using CommBackend = c10d::ProcessGroup;
#endif

struct Group {
  Sequencer seq;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<CommBackend> pg;
  int rank = 0;
  int size = 1;
  std::string backend;
  /// Where this group's tensors live: the CPU for gloo, this rank's GPU (cuda:LOCAL_RANK) for nccl.
  at::Device device{at::kCPU};
};

/// The default group; throws naming `op` when there is none.
std::shared_ptr<Group> current(const std::string& op);
/// "rank R of W, op": the start of every collective's error message.
inline std::string where(const Group& g, const std::string& op) {
  return "rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + ", " + op;
}
/// Throws (naming `op` and the fix) unless `t` is on the group's kind of device: CPU for gloo, CUDA for nccl.
void checkDevice(const Group& g, const at::Tensor& t, const std::string& op);
/// All-reduce of `t` in place, enqueued in `ticket`'s turn (a fresh ticket when none: a synchronous caller); waits.
void allReduceNow(Group& g, at::Tensor t, const std::string& op, c10::optional<uint64_t> ticket = c10::nullopt);
/// Every rank's `t` (same shape and dtype on every rank, checked first); waits.
std::vector<at::Tensor> allGatherNow(Group& g, const at::Tensor& t, const std::string& op = "allGather",
                                     c10::optional<uint64_t> ticket = c10::nullopt);

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

#else

/// Every dist entry point of an addon built without c10d/Gloo: throws what to install.
[[noreturn]] Napi::Value unavailable(Args& a);

#endif

}  // namespace dist
}  // namespace dyad
