/*
 * jwt.h — JSON Web Token (RFC 7519) verification for `auth jwt`: JWS
 * compact serialisation signed with HS256/HS384/HS512 (HMAC), RS256
 * (RSASSA-PKCS1-v1_5 SHA-256) or ES256 (ECDSA P-256 SHA-256), with
 * OpenSSL; JSON parsed by jansson.
 *
 * What is refused, in the order checked:
 *  - anything but three base64url segments (strict: no padding, no
 *    whitespace, no non-canonical trailing bits), a header or payload that
 *    is not a JSON object, duplicate member names, a `crit` header
 *    (no extension is understood), tokens over JWT_MAX_LEN  -> MALFORMED
 *  - an `alg` the directive does not allow (so `none`, and HS256 where
 *    RS256 is configured — the public key used as an HMAC secret), or one
 *    the configured key cannot verify (RS256 needs an RSA key, ES256 an
 *    EC P-256 key)                                          -> BAD_ALG
 *  - a signature that does not verify (ES256: the JWS raw r||s of 64
 *    bytes, converted to DER for EVP)                      -> BAD_SIGNATURE
 *  - exp (when present, always enforced): now >= exp + leeway -> EXPIRED
 *  - nbf: now + leeway < nbf                            -> NOT_YET_VALID
 *  - iss when configured: must be that string             -> BAD_ISSUER
 *  - aud when configured: that string, or an array holding it -> BAD_AUDIENCE
 * exp/nbf that are not numbers are MALFORMED. The payload is only parsed
 * after the signature verified.
 */
#ifndef GWD_JWT_H
#define GWD_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <openssl/evp.h>

#define JWT_MAX_LEN 16384

/* An HMAC secret prepared once (the keyed inner and outer digest states
 * of HS256, HS384 and HS512), so a verification costs two digest copies
 * instead of OpenSSL's per-call fetch and key setup (~0.3 us instead of
 * ~2.5 us here). Read-only after jwt_hmac_new: shared by threads. */
typedef struct jwt_hmac jwt_hmac;
jwt_hmac *jwt_hmac_new(const unsigned char *secret, size_t len);
void jwt_hmac_free(jwt_hmac *h);

typedef struct jwt_key {
	uint32_t algs;                    /* GWB_JWT_* accepted */
	const jwt_hmac *hmac;             /* HS*: the prepared secret, or */
	const unsigned char *secret;      /* HS*: the shared secret as bytes */
	size_t secret_len;
	EVP_PKEY *pkey;                   /* RS256 / ES256: the public key */
} jwt_key;

typedef struct jwt_check {
	int64_t now;                      /* seconds since the epoch */
	uint32_t leeway;                  /* seconds, for exp and nbf */
	const char *iss;                  /* NULL: not checked */
	const char *aud;                  /* NULL: not checked */
} jwt_check;

enum jwt_status {
	JWT_OK, JWT_MALFORMED, JWT_BAD_ALG, JWT_BAD_SIGNATURE, JWT_EXPIRED,
	JWT_NOT_YET_VALID, JWT_BAD_ISSUER, JWT_BAD_AUDIENCE, JWT_NOMEM
};

/* Verify tok[0..n). JWT_OK: *claims is the payload object (the caller
 * json_decref()s it); otherwise *claims is NULL. */
int jwt_verify(const jwt_key *k, const jwt_check *c, const char *tok, size_t n,
               json_t **claims);
/* "token expired", ... (for error_description) */
const char *jwt_strerror(int status);

/* strict base64url (RFC 7515 2): the decoded length, or -1 for a bad
 * character, a bad length, non-zero unused bits or out too small */
long jwt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);
/* GWB_JWT_* bit of an alg name, 0 if not one of the five */
uint32_t jwt_alg_bit(const char *name);
/* a PEM public key (SPKI "PUBLIC KEY", PKCS#1 "RSA PUBLIC KEY") or an
 * X.509 certificate's key; NULL with err */
EVP_PKEY *jwt_pkey_from_pem(const char *pem, size_t len, char *err, size_t errlen);
/* what the key can verify: GWB_JWT_RS256 (RSA), GWB_JWT_ES256 (EC P-256), 0 */
uint32_t jwt_pkey_algs(EVP_PKEY *k);

#endif /* GWD_JWT_H */
