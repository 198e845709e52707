// The ShoalTestSupport module.
