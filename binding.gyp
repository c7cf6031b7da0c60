{
  # node-gyp builds of the native shim (CMakeLists.txt builds the same two addons):
  #   pymalloc         -> build/Release/pymalloc.node: the C Node-API (node_api.h) only, so one build serves every
  #                       Node.js version (see "Nothing here may abort the process" in native/shim.cc). Its shared
  #                       heaps use Node-API's node_api_create_external_sharedarraybuffer where the running Node.js
  #                       has it (26.1 and later, recent 24.x; native/shared_napi.cc binds it weakly at load time).
  #   pymalloc_shared  -> build/Release/pymalloc_shared.node: the same sources with native/shared.cc, which uses V8's
  #                       C++ API for shared heaps (SharedArrayBuffer) in Node.js 20 and 22, so it is valid for this
  #                       Node.js major version only. lib/os/native.ts loads it, from beside the main addon, on the
  #                       first shared reservation where the main addon cannot make one; it is never prebuilt.
  # node-gyp-build and prebuildify take the first .node file of build/Release in sorted order (libuv's scandir
  # sorts), which is pymalloc.node ('.' sorts before '_'); test/os/native.test.ts checks that node-gyp-build does.
  "target_defaults": {
    "defines": [
      "NAPI_VERSION=8"
    ],
    "cflags!": ["-fno-exceptions", "-O3"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20", "-O3"],
    "cflags": ["-O2"],
    # -z nodelete: Node unloads an addon (dlclose) with the last environment that loaded it, such as an exiting
    # worker, but V8 may run a SharedArrayBuffer backing store's deleter, this addon's code, later (a worker that
    # exited holding a shared heap was a SIGSEGV). Both addons stay mapped until the process ends.
    "ldflags": ["-Wl,-z,nodelete"],
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
        "native/inspector.cc",
        "native/shared_napi.cc"
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
