// The op table: one line per op, JS name -> libtorch call on positional arguments.
//
// Argument readers (see handle.h): t = Tensor, ot = optional Tensor, ts = Tensor or number
// (wrapped like a Python scalar, so type promotion matches PyTorch), s/os = Scalar,
// d/od = double, i64/oi64 = integer, b = bool, str = string, il/oil = int list,
// tl = Tensor list, otl = list of optional Tensors, dt/odt = dtype, opts(i) = dtype at i and
// device at i+1. Keyword defaults live in TypeScript (src/torch), which always passes every
// position. In-place ops (OPV) return undefined; TypeScript returns `this`.
//
// Keep to the C++ API that both libtorch 1.13 (Debian) and 2.x have.
#include "handle.h"

#include <ATen/autocast_mode.h>

namespace dyad {
namespace {

#define OP(name, ...) {name, [](Args& a) -> Napi::Value { return ret(a.env(), __VA_ARGS__); }}
#define OPV(name, ...) {name, [](Args& a) -> Napi::Value { __VA_ARGS__; return a.env().Undefined(); }}

std::vector<at::Tensor> splitSizes(const at::Tensor& t, at::IntArrayRef sizes, int64_t dim) {
  return at::split_with_sizes(t, sizes, dim);
}

at::Tensor sumOp(Args& a) {
  auto dtype = a.odt(3);
  if (!a.has(1)) return at::sum(a.t(0), dtype);
  return at::sum(a.t(0), a.il(1), a.b(2), dtype);
}
at::Tensor meanOp(Args& a) {
  auto dtype = a.odt(3);
  if (!a.has(1)) return at::mean(a.t(0), dtype);
  return at::mean(a.t(0), a.il(1), a.b(2), dtype);
}
at::Tensor normOp(Args& a) {
  if (!a.has(2)) return at::norm(a.t(0), a.s(1));
  return at::norm(a.t(0), a.os(1), a.il(2), a.b(3));
}
at::Tensor conv2dOp(Args& a) {
  return at::conv2d(a.t(0), a.t(1), a.ot(2), a.il(3), a.il(4), a.il(5), a.i64(6));
}
at::Tensor conv2dPadOp(Args& a) {
  return at::conv2d(a.t(0), a.t(1), a.ot(2), a.il(3), a.str(4), a.il(5), a.i64(6));
}

// Mixed precision (torch.autocast): libtorch's thread-local autocast state, per device type.
// 'cuda' is at::autocast's GPU state (set_enabled / autocast_gpu_dtype), 'cpu' its CPU state.
void autocastSet(const std::string& device, bool enabled, at::ScalarType dtype) {
  if (device == "cuda") {
    at::autocast::set_enabled(enabled);
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else if (device == "cpu") {
    at::autocast::set_cpu_enabled(enabled);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    throw std::invalid_argument("autocast: deviceType must be 'cpu' or 'cuda', got '" + device + "'");
  }
}
bool autocastIsEnabled(const std::string& device) {
  return device == "cuda" ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
// Entering a region increments the nesting; leaving the outermost one clears the cast cache.
void autocastNest(bool enter) {
  if (enter) {
    at::autocast::increment_nesting();
  } else if (at::autocast::decrement_nesting() == 0) {
    at::autocast::clear_cache();
  }
}

const std::vector<OpEntry> kOps = {
    // ---- creation -------------------------------------------------------------------
    OP("zeros", at::zeros(a.il(0), a.opts(1))),
    OP("ones", at::ones(a.il(0), a.opts(1))),
    OP("empty", at::empty(a.il(0), a.opts(1))),
    OP("full", at::full(a.il(0), a.s(1), a.opts(2))),
    OP("arange", at::arange(a.s(0), a.s(1), a.s(2), a.opts(3))),
    OP("linspace", at::linspace(a.s(0), a.s(1), a.i64(2), a.opts(3))),
    OP("eye", at::eye(a.i64(0), a.i64(1), a.opts(2))),
    OP("rand", at::rand(a.il(0), a.opts(1))),
    OP("randn", at::randn(a.il(0), a.opts(1))),
    OP("randint", at::randint(a.i64(0), a.i64(1), a.il(2), a.opts(3))),
    OP("randperm", at::randperm(a.i64(0), a.opts(1))),
    OP("scalarTensor", at::scalar_tensor(a.s(0), a.opts(1))),
    OP("zerosLike", at::zeros_like(a.t(0))),
    OP("onesLike", at::ones_like(a.t(0))),
    OP("emptyLike", at::empty_like(a.t(0))),
    OP("fullLike", at::full_like(a.t(0), a.s(1))),
    OP("randLike", at::rand_like(a.t(0))),
    OP("randnLike", at::randn_like(a.t(0))),

    // ---- conversion and copies ------------------------------------------------------
    OP("toDtype", a.t(0).to(a.dt(1))),
    OP("toDevice", a.t(0).to(parseDevice(a.str(1)))),
    OP("toDeviceNonBlocking", a.t(0).to(parseDevice(a.str(1)), a.t(0).scalar_type(), a.b(2))),
    OP("pinMemory", a.t(0).pin_memory()),
    OP("isPinned", a.t(0).is_pinned()),
    OPV("autocastSet", autocastSet(a.str(0), a.b(1), a.dt(2))),
    OP("autocastIsEnabled", autocastIsEnabled(a.str(0))),
    OPV("autocastNest", autocastNest(a.b(0))),
    OP("contiguous", a.t(0).contiguous(a.mf(1))),
    OP("clone", at::clone(a.t(0), a.has(1) ? c10::optional<at::MemoryFormat>(a.mf(1)) : c10::nullopt)),
    OP("detach", a.t(0).detach()),

    // ---- elementwise binary (other may be a number) -----------------------------------
    OP("add", at::add(a.t(0), a.ts(1), a.s(2))),
    OP("sub", at::sub(a.t(0), a.ts(1), a.s(2))),
    OP("mul", at::mul(a.t(0), a.ts(1))),
    OP("div", a.has(2) ? at::div(a.t(0), a.ts(1), c10::optional<c10::string_view>(a.str(2))) : at::div(a.t(0), a.ts(1))),
    OP("pow", at::pow(a.t(0), a.ts(1))),
    OP("remainder", at::remainder(a.t(0), a.ts(1))),
    OP("fmod", at::fmod(a.t(0), a.ts(1))),
    OP("maximum", at::maximum(a.t(0), a.ts(1))),
    OP("minimum", at::minimum(a.t(0), a.ts(1))),
    OP("atan2", at::atan2(a.t(0), a.ts(1))),
    OP("eq", at::eq(a.t(0), a.ts(1))),
    OP("ne", at::ne(a.t(0), a.ts(1))),
    OP("lt", at::lt(a.t(0), a.ts(1))),
    OP("le", at::le(a.t(0), a.ts(1))),
    OP("gt", at::gt(a.t(0), a.ts(1))),
    OP("ge", at::ge(a.t(0), a.ts(1))),
    OP("logicalAnd", at::logical_and(a.t(0), a.ts(1))),
    OP("logicalOr", at::logical_or(a.t(0), a.ts(1))),
    OP("logicalXor", at::logical_xor(a.t(0), a.ts(1))),
    OP("lerp", a.raw(2).IsNumber() ? at::lerp(a.t(0), a.t(1), a.s(2)) : at::lerp(a.t(0), a.t(1), a.t(2))),
    OP("where", at::where(a.t(0), a.ts(1), a.ts(2))),
    OP("maskedFill", at::masked_fill(a.t(0), a.t(1), a.s(2))),
    OP("clamp", at::clamp(a.t(0), a.os(1), a.os(2))),
    OP("nanToNum", at::nan_to_num(a.t(0), a.od(1), a.od(2), a.od(3))),
    OP("allclose", at::allclose(a.t(0), a.t(1), a.d(2), a.d(3), a.b(4))),
    OP("equal", at::equal(a.t(0), a.t(1))),

    // ---- elementwise unary ----------------------------------------------------------
    OP("neg", at::neg(a.t(0))),
    OP("abs", at::abs(a.t(0))),
    OP("exp", at::exp(a.t(0))),
    OP("log", at::log(a.t(0))),
    OP("log2", at::log2(a.t(0))),
    OP("log1p", at::log1p(a.t(0))),
    OP("expm1", at::expm1(a.t(0))),
    OP("sqrt", at::sqrt(a.t(0))),
    OP("rsqrt", at::rsqrt(a.t(0))),
    OP("square", at::square(a.t(0))),
    OP("sin", at::sin(a.t(0))),
    OP("cos", at::cos(a.t(0))),
    OP("tan", at::tan(a.t(0))),
    OP("tanh", at::tanh(a.t(0))),
    OP("sigmoid", at::sigmoid(a.t(0))),
    OP("erf", at::erf(a.t(0))),
    OP("floor", at::floor(a.t(0))),
    OP("ceil", at::ceil(a.t(0))),
    OP("round", at::round(a.t(0))),
    OP("trunc", at::trunc(a.t(0))),
    OP("sign", at::sign(a.t(0))),
    OP("reciprocal", at::reciprocal(a.t(0))),
    OP("isnan", at::isnan(a.t(0))),
    OP("isinf", at::isinf(a.t(0))),
    OP("isfinite", at::isfinite(a.t(0))),
    OP("logicalNot", at::logical_not(a.t(0))),

    // ---- reductions -----------------------------------------------------------------
    OP("sum", sumOp(a)),
    OP("mean", meanOp(a)),
    OP("prod", at::prod(a.t(0), a.odt(1))),
    OP("var", a.has(1) ? at::var(a.t(0), a.il(1), a.b(2), a.b(3)) : at::var(a.t(0), a.b(2))),
    OP("std", a.has(1) ? at::std(a.t(0), a.il(1), a.b(2), a.b(3)) : at::std(a.t(0), a.b(2))),
    OP("max", at::max(a.t(0))),
    OP("min", at::min(a.t(0))),
    OP("maxDim", at::max(a.t(0), a.i64(1), a.b(2))),
    OP("minDim", at::min(a.t(0), a.i64(1), a.b(2))),
    OP("amax", at::amax(a.t(0), a.il(1), a.b(2))),
    OP("amin", at::amin(a.t(0), a.il(1), a.b(2))),
    OP("argmax", at::argmax(a.t(0), a.oi64(1), a.b(2))),
    OP("argmin", at::argmin(a.t(0), a.oi64(1), a.b(2))),
    OP("logsumexp", at::logsumexp(a.t(0), a.il(1), a.b(2))),
    OP("norm", normOp(a)),
    OP("cumsum", at::cumsum(a.t(0), a.i64(1), a.odt(2))),
    OP("cumprod", at::cumprod(a.t(0), a.i64(1), a.odt(2))),
    OP("all", at::all(a.t(0))),
    OP("any", at::any(a.t(0))),
    OP("countNonzero", at::count_nonzero(a.t(0), a.oi64(1))),

    // ---- linear algebra -------------------------------------------------------------
    OP("matmul", at::matmul(a.t(0), a.t(1))),
    OP("mm", at::mm(a.t(0), a.t(1))),
    OP("bmm", at::bmm(a.t(0), a.t(1))),
    OP("einsum", at::einsum(a.str(0), a.tl(1))),
    OP("outer", at::outer(a.t(0), a.t(1))),
    OP("addmm", at::addmm(a.t(0), a.t(1), a.t(2), a.s(3), a.s(4))),
    OP("baddbmm", at::baddbmm(a.t(0), a.t(1), a.t(2), a.s(3), a.s(4))),
    OP("cdist", at::cdist(a.t(0), a.t(1), a.d(2))),

    // ---- shape and indexing ---------------------------------------------------------
    OP("view", a.t(0).view(a.il(1))),
    OP("reshape", at::reshape(a.t(0), a.il(1))),
    OP("permute", a.t(0).permute(a.il(1))),
    OP("transpose", at::transpose(a.t(0), a.i64(1), a.i64(2))),
    OP("flatten", at::flatten(a.t(0), a.i64(1), a.i64(2))),
    OP("unflatten", a.t(0).unflatten(a.i64(1), a.il(2))),
    OP("squeeze", a.has(1) ? at::squeeze(a.t(0), a.i64(1)) : at::squeeze(a.t(0))),
    OP("unsqueeze", at::unsqueeze(a.t(0), a.i64(1))),
    OP("cat", at::cat(a.tl(0), a.i64(1))),
    OP("stack", at::stack(a.tl(0), a.i64(1))),
    OP("split", at::split(a.t(0), a.i64(1), a.i64(2))),
    OP("splitWithSizes", splitSizes(a.t(0), a.il(1), a.i64(2))),
    OP("chunk", at::chunk(a.t(0), a.i64(1), a.i64(2))),
    OP("unbind", at::unbind(a.t(0), a.i64(1))),
    OP("narrow", at::narrow(a.t(0), a.i64(1), a.i64(2), a.i64(3))),
    OP("select", at::select(a.t(0), a.i64(1), a.i64(2))),
    OP("slice", at::slice(a.t(0), a.i64(1), a.oi64(2), a.oi64(3), a.i64(4))),
    OP("indexSelect", at::index_select(a.t(0), a.i64(1), a.t(2))),
    OP("index", at::index(a.t(0), a.otl(1))),
    OP("indexPut", at::index_put(a.t(0), a.otl(1), a.t(2), a.b(3))),
    OP("maskedSelect", at::masked_select(a.t(0), a.t(1))),
    OP("nonzero", at::nonzero(a.t(0))),
    OP("gather", at::gather(a.t(0), a.i64(1), a.t(2))),
    OP("scatter", at::scatter(a.t(0), a.i64(1), a.t(2), a.t(3))),
    OP("scatterAdd", at::scatter_add(a.t(0), a.i64(1), a.t(2), a.t(3))),
    OP("expand", a.t(0).expand(a.il(1))),
    OP("repeat", a.t(0).repeat(a.il(1))),
    OP("repeatInterleave", at::repeat_interleave(a.t(0), a.i64(1), a.oi64(2))),
    OP("flip", at::flip(a.t(0), a.il(1))),
    OP("roll", at::roll(a.t(0), a.il(1), a.il(2))),
    OP("tril", at::tril(a.t(0), a.i64(1))),
    OP("triu", at::triu(a.t(0), a.i64(1))),
    OP("diagonal", at::diagonal(a.t(0), a.i64(1), a.i64(2), a.i64(3))),
    OP("topk", at::topk(a.t(0), a.i64(1), a.i64(2), a.b(3), a.b(4))),
    OP("sort", at::sort(a.t(0), a.b(3), a.i64(1), a.b(2))),
    OP("argsort", std::get<1>(at::sort(a.t(0), a.b(3), a.i64(1), a.b(2)))),

    // ---- nn functional --------------------------------------------------------------
    OP("conv1d", at::conv1d(a.t(0), a.t(1), a.ot(2), a.il(3), a.il(4), a.il(5), a.i64(6))),
    OP("conv2d", conv2dOp(a)),
    OP("conv2dPad", conv2dPadOp(a)),
    OP("convTranspose2d", at::conv_transpose2d(a.t(0), a.t(1), a.ot(2), a.il(3), a.il(4), a.il(5), a.i64(6), a.il(7))),
    OP("linear", at::linear(a.t(0), a.t(1), a.ot(2))),
    OP("batchNorm", at::batch_norm(a.t(0), a.ot(1), a.ot(2), a.ot(3), a.ot(4), a.b(5), a.d(6), a.d(7), true)),
    OP("layerNorm", at::layer_norm(a.t(0), a.il(1), a.ot(2), a.ot(3), a.d(4), true)),
    OP("groupNorm", at::group_norm(a.t(0), a.i64(1), a.ot(2), a.ot(3), a.d(4), true)),
    OP("relu", at::relu(a.t(0))),
    OP("gelu", at::gelu(a.t(0), a.str(1))),
    OP("silu", at::silu(a.t(0))),
    OP("mish", at::mish(a.t(0))),
    OP("leakyRelu", at::leaky_relu(a.t(0), a.s(1))),
    OP("elu", at::elu(a.t(0), a.s(1))),
    OP("softplus", at::softplus(a.t(0), a.s(1), a.s(2))),
    OP("hardtanh", at::hardtanh(a.t(0), a.s(1), a.s(2))),
    OP("softmax", at::softmax(a.t(0), a.i64(1), a.odt(2))),
    OP("logSoftmax", at::log_softmax(a.t(0), a.i64(1), a.odt(2))),
    OP("crossEntropy", at::cross_entropy_loss(a.t(0), a.t(1), a.ot(2), a.i64(3), a.i64(4), a.d(5))),
    OP("nllLoss", at::nll_loss_nd(a.t(0), a.t(1), a.ot(2), a.i64(3), a.i64(4))),
    OP("mseLoss", at::mse_loss(a.t(0), a.t(1), a.i64(2))),
    OP("l1Loss", at::l1_loss(a.t(0), a.t(1), a.i64(2))),
    OP("smoothL1Loss", at::smooth_l1_loss(a.t(0), a.t(1), a.i64(2), a.d(3))),
    OP("binaryCrossEntropyWithLogits", at::binary_cross_entropy_with_logits(a.t(0), a.t(1), a.ot(2), a.ot(3), a.i64(4))),
    OP("klDiv", at::kl_div(a.t(0), a.t(1), a.i64(2), a.b(3))),
    OP("dropout", at::dropout(a.t(0), a.d(1), a.b(2))),
    OP("maxPool2d", at::max_pool2d(a.t(0), a.il(1), a.il(2), a.il(3), a.il(4), a.b(5))),
    OP("avgPool2d", at::avg_pool2d(a.t(0), a.il(1), a.il(2), a.il(3), a.b(4), a.b(5), a.oi64(6))),
    OP("adaptiveAvgPool1d", at::adaptive_avg_pool1d(a.t(0), a.il(1))),
    OP("adaptiveAvgPool2d", at::adaptive_avg_pool2d(a.t(0), a.il(1))),
    OP("adaptiveMaxPool2d", at::adaptive_max_pool2d(a.t(0), a.il(1))),
    OP("upsampleNearest2d", at::upsample_nearest2d(a.t(0), a.il(1), a.od(2), a.od(3))),
    OP("upsampleBilinear2d", at::upsample_bilinear2d(a.t(0), a.il(1), a.b(2), a.od(3), a.od(4))),
    OP("upsampleBicubic2d", at::upsample_bicubic2d(a.t(0), a.il(1), a.b(2), a.od(3), a.od(4))),
    OP("upsampleBilinear2dAA", at::_upsample_bilinear2d_aa(a.t(0), a.il(1), a.b(2), a.od(3), a.od(4))),
    OP("upsampleBicubic2dAA", at::_upsample_bicubic2d_aa(a.t(0), a.il(1), a.b(2), a.od(3), a.od(4))),
    OP("gridSampler", at::grid_sampler(a.t(0), a.t(1), a.i64(2), a.i64(3), a.b(4))),
    OP("affineGrid", at::affine_grid_generator(a.t(0), a.il(1), a.b(2))),
    OP("embedding", at::embedding(a.t(0), a.t(1), a.i64(2), a.b(3), a.b(4))),
    OP("cosineSimilarity", at::cosine_similarity(a.t(0), a.t(1), a.i64(2), a.d(3))),
    OP("oneHot", at::one_hot(a.t(0), a.i64(1))),
    OP("constantPad", at::constant_pad_nd(a.t(0), a.il(1), a.s(2))),
    OP("reflectionPad1d", at::reflection_pad1d(a.t(0), a.il(1))),
    OP("reflectionPad2d", at::reflection_pad2d(a.t(0), a.il(1))),
    OP("replicationPad1d", at::replication_pad1d(a.t(0), a.il(1))),
    OP("replicationPad2d", at::replication_pad2d(a.t(0), a.il(1))),
    OP("pixelShuffle", at::pixel_shuffle(a.t(0), a.i64(1))),

    // ---- in place (optimizers, initialisers, buffers) -------------------------------
    OPV("add_", a.t(0).add_(a.ts(1), a.s(2))),
    OPV("sub_", a.t(0).sub_(a.ts(1), a.s(2))),
    OPV("mul_", a.t(0).mul_(a.ts(1))),
    OPV("div_", a.t(0).div_(a.ts(1))),
    OPV("addcmul_", a.t(0).addcmul_(a.t(1), a.t(2), a.s(3))),
    OPV("addcdiv_", a.t(0).addcdiv_(a.t(1), a.t(2), a.s(3))),
    OPV("lerp_", a.raw(2).IsNumber() ? a.t(0).lerp_(a.t(1), a.s(2)) : a.t(0).lerp_(a.t(1), a.t(2))),
    OPV("copy_", a.t(0).copy_(a.t(1))),
    OPV("zero_", a.t(0).zero_()),
    OPV("fill_", a.t(0).fill_(a.s(1))),
    OPV("clamp_", a.t(0).clamp_(a.os(1), a.os(2))),
    OPV("sqrt_", a.t(0).sqrt_()),
    OPV("neg_", a.t(0).neg_()),
    OPV("exp_", a.t(0).exp_()),
    OPV("relu_", a.t(0).relu_()),
    OPV("uniform_", a.t(0).uniform_(a.d(1), a.d(2))),
    OPV("normal_", a.t(0).normal_(a.d(1), a.d(2))),
    OPV("bernoulli_", a.t(0).bernoulli_(a.d(1))),
    OPV("maskedFill_", a.t(0).masked_fill_(a.t(1), a.s(2))),
    OPV("indexPut_", a.t(0).index_put_(a.otl(1), a.t(2), a.b(3))),
    OPV("indexCopy_", a.t(0).index_copy_(a.i64(1), a.t(2), a.t(3))),
    OPV("indexAdd_", a.t(0).index_add_(a.i64(1), a.t(2), a.t(3))),
    OPV("scatter_", a.t(0).scatter_(a.i64(1), a.t(2), a.t(3))),
    OPV("scatterAdd_", a.t(0).scatter_add_(a.i64(1), a.t(2), a.t(3))),
};

#undef OP
#undef OPV
}  // namespace

const std::vector<OpEntry>& opTable() { return kOps; }

}  // namespace dyad
