{
  # node-gyp build of the native shim -> build/Release/pymalloc.node (CMakeLists.txt builds the same sources).
  # The shim uses the C Node-API (node_api.h) only: see "Nothing here may abort the process" in native/shim.cc.
  "targets": [
    {
      "target_name": "pymalloc",
      "sources": [
        "native/shim.cc",
        "native/inspector.cc"
      ],
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
    }
  ]
}
