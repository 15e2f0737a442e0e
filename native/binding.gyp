{
  "targets": [
    {
      "target_name": "dyad",
      "sources": ["src/addon.cc", "src/allocator.cc", "src/handle.cc", "src/ops.cc", "src/jit.cc", "src/distributed.cc", "src/distributed_grad.cc"],
      "include_dirs": [
        "<!(node find-libtorch.mjs napi)",
        "<!@(node find-libtorch.mjs include)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "<!@(node find-libtorch.mjs defines)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-frtti", "-Wno-unused-parameter", "-Wno-deprecated-declarations"],
      "libraries": ["<!@(node find-libtorch.mjs libs)"]
    }
  ]
}
