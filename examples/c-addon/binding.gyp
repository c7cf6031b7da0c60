# node-gyp build of the example addon: the include path comes from the installed pymalloc package.
{
  "targets": [
    {
      "target_name": "walk",
      "sources": ["src/walk.c"],
      "include_dirs": ["<!(node -p \"require('pymalloc').includeDir\")"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror"]
    }
  ]
}
