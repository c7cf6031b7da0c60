{
  # node-gyp builds of the native shim (CMakeLists.txt builds the same two addons):
  #   pymalloc         -> build/Release/pymalloc.node: the C Node-API (node_api.h) only, so one build serves every
  #                       Node.js version (see "Nothing here may abort the process" in native/shim.cc).
  #   pymalloc_shared  -> build/Release/pymalloc_shared.node: the same sources plus native/shared.cc, which uses V8's
  #                       C++ API for shared heaps (SharedArrayBuffer), so it is valid for this Node.js major version
  #                       only. lib/os/native.ts loads it, from beside the main addon, on the first shared
  #                       reservation; it is never prebuilt.
  # node-gyp-build and prebuildify take the first .node file of build/Release in sorted order (libuv's scandir
  # sorts), which is pymalloc.node ('.' sorts before '_'); test/os/native.test.ts checks that node-gyp-build does.
  "target_defaults": {
    "defines": [
      "NAPI_VERSION=8"
    ],
    "cflags!": ["-fno-exceptions", "-O3"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20", "-O3"],
    "cflags": ["-O2"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "GCC_OPTIMIZATION_LEVEL": "2"
    }
  },
  "targets": [
    {
      "target_name": "pymalloc",
      "sources": [
        "native/shim.cc",
        "native/inspector.cc"
      ]
    },
    {
      "target_name": "pymalloc_shared",
      "sources": [
        "native/shim.cc",
        "native/inspector.cc",
        "native/shared.cc"
      ],
      "defines": [
        "PYMALLOC_SHARED_ADDON"
      ]
    }
  ]
}
