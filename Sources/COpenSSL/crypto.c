#include "COpenSSLCrypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

int shoal_pbkdf2_sha512(const void *password, size_t password_len, const void *salt, size_t salt_len,
                        int iterations, void *output, size_t output_len) {
    if (password_len > 0x7fffffff || salt_len > 0x7fffffff || output_len > 0x7fffffff || iterations < 1) return 0;
    return PKCS5_PBKDF2_HMAC((const char *)password, (int)password_len, (const unsigned char *)salt, (int)salt_len,
                             iterations, EVP_sha512(), (int)output_len, (unsigned char *)output);
}

int shoal_sha512_password_salt(const void *password, size_t password_len, const void *salt, size_t salt_len,
                               void *output) {
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    if (context == NULL) return 0;
    unsigned int length = 0;
    int ok = EVP_DigestInit_ex(context, EVP_sha512(), NULL) == 1
        && EVP_DigestUpdate(context, password, password_len) == 1
        && EVP_DigestUpdate(context, salt, salt_len) == 1
        && EVP_DigestFinal_ex(context, (unsigned char *)output, &length) == 1
        && length == 64;
    EVP_MD_CTX_free(context);
    return ok ? 1 : 0;
}

int shoal_random_bytes(void *output, int count) { return RAND_bytes((unsigned char *)output, count); }

int shoal_constant_time_compare(const void *left, const void *right, size_t count) {
    return CRYPTO_memcmp(left, right, count);
}
