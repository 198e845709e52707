print("shoal: the broker is not built yet")
