{
  "targets": [
    {
      "target_name": "stx_uvpoll",
      "sources": ["native/uvpoll.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
