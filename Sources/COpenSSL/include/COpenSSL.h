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
#include <openssl/x509v3.h>
#include <stdint.h>
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
/// `SSL_CTX_set_max_proto_version(ctx, version)`.
int shoal_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
/// `SSL_CTX_sess_set_cache_size(ctx, size)`: entries in the server session cache.
long shoal_SSL_CTX_sess_set_cache_size(SSL_CTX *ctx, long size);
/// `SSL_set_tlsext_host_name(ssl, name)`: the SNI a client sends.
int shoal_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
/// `SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE`: the options every server
/// context sets (the `SSL_OP_*` constants are 64-bit shifts Swift does not import).
uint64_t shoal_SSL_OP_server_defaults(void);
/// `SSL_OP_NO_TICKET`: turns stateless session tickets off.
uint64_t shoal_SSL_OP_NO_TICKET(void);
/// Constant values Swift cannot import (macros built from other macros).
long shoal_SSL_SESS_CACHE_SERVER(void);
long shoal_SSL_MODE_RELEASE_BUFFERS(void);
long shoal_SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER(void);

#endif
