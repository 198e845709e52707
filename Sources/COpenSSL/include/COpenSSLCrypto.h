// The password-hashing part of the COpenSSL shim (used by Broker's password file): thin functions over OpenSSL's
// PBKDF2, SHA-512, random bytes and constant-time comparison, so Swift sees plain byte-buffer calls.
#ifndef SHOAL_COPENSSL_CRYPTO_H
#define SHOAL_COPENSSL_CRYPTO_H

#include <stddef.h>

/// PBKDF2-HMAC-SHA512 (`PKCS5_PBKDF2_HMAC` with `EVP_sha512()`): writes `output_len` bytes. Returns 1 on success.
int shoal_pbkdf2_sha512(const void *password, size_t password_len, const void *salt, size_t salt_len,
                        int iterations, void *output, size_t output_len);
/// SHA-512 of `password` followed by `salt` (Mosquitto's `$6$` hash): writes 64 bytes. Returns 1 on success.
int shoal_sha512_password_salt(const void *password, size_t password_len, const void *salt, size_t salt_len,
                               void *output);
/// `RAND_bytes`: `count` cryptographically strong random bytes. Returns 1 on success.
int shoal_random_bytes(void *output, int count);
/// `CRYPTO_memcmp`: 0 when the `count` bytes are equal, in time independent of their contents.
int shoal_constant_time_compare(const void *left, const void *right, size_t count);

#endif
