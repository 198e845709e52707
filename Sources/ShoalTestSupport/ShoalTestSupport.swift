// The ShoalTestSupport module: helpers shared by the test targets, as SwiftNIO ships NIOTestUtils.
//
// - SeededRandom: a deterministic random number generator (SplitMix64); a failing test prints its seed.
// - ByteVectors: small helpers to write and print byte vectors.
// - DecoderVerifier: feeds the same bytes whole, one byte at a time and split at random points, and checks
//   that the same packets (and the same error) come out.
