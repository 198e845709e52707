// COpenSSL: the C shim over OpenSSL 3 used by BrokerTLS. Macros that Swift cannot import are exposed as
// functions in shim.c.
#ifndef SHOAL_COPENSSL_H
#define SHOAL_COPENSSL_H

#include <features.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "COpenSSLCrypto.h"

/// `BIO_pending(bio)`: bytes waiting to be read from a memory BIO.
long shoal_BIO_pending(BIO *bio);
/// `BIO_set_mem_eof_return(bio, v)`: what a read of an empty memory BIO returns (-1: retry).
long shoal_BIO_set_mem_eof_return(BIO *bio, long value);
/// `SSL_CTX_set_min_proto_version(ctx, version)`.
int shoal_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
/// `SSL_CTX_set_mode(ctx, mode)`.
long shoal_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
/// `SSL_CTX_set_session_cache_mode(ctx, mode)`.
long shoal_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode);
/// `SSL_CTX_set1_groups_list(ctx, list)`.
int shoal_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list);

#endif
