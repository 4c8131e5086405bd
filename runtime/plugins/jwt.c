/*
 * jwt.c — JWT verification (jwt.h).
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "gwb.h"
#include "jwt.h"

/* ------------------------------------------------------------ base64url */
static int b64v(unsigned char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '-') return 62;
	if (c == '_') return 63;
	return -1;
}

long jwt_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	if (n % 4 == 1)
		return -1;
	size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (need > cap)
		return -1;
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64v((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	/* the bits left over must be zero: one encoding per byte string */
	if (acc != 0)
		return -1;
	return (long)k;
}

/* ----------------------------------------------------------------- keys */
uint32_t jwt_alg_bit(const char *name)
{
	static const struct { const char *n; uint32_t bit; } algs[] = {
		{ "HS256", GWB_JWT_HS256 }, { "HS384", GWB_JWT_HS384 },
		{ "HS512", GWB_JWT_HS512 }, { "RS256", GWB_JWT_RS256 },
		{ "ES256", GWB_JWT_ES256 },
	};
	for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
		if (!strcmp(name, algs[i].n))
			return algs[i].bit;
	return 0;
}

uint32_t jwt_pkey_algs(EVP_PKEY *k)
{
	if (!k)
		return 0;
	int id = EVP_PKEY_get_base_id(k);
	if (id == EVP_PKEY_RSA)
		return GWB_JWT_RS256;
	if (id == EVP_PKEY_EC) {
		char group[64];
		size_t gl;
		if (EVP_PKEY_get_group_name(k, group, sizeof group, &gl) == 1 &&
		    (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")))
			return GWB_JWT_ES256;
	}
	return 0;
}

EVP_PKEY *jwt_pkey_from_pem(const char *pem, size_t len, char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	OSSL_DECODER_CTX *dc = OSSL_DECODER_CTX_new_for_pkey(&pkey, "PEM", NULL, NULL,
	                                                     EVP_PKEY_PUBLIC_KEY, NULL, NULL);
	if (dc) {
		const unsigned char *p = (const unsigned char *)pem;
		size_t l = len;
		if (OSSL_DECODER_from_data(dc, &p, &l) != 1)
			pkey = NULL;
		OSSL_DECODER_CTX_free(dc);
	}
	if (!pkey) {
		BIO *b = BIO_new_mem_buf(pem, (int)len);
		X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		if (x)
			pkey = X509_get_pubkey(x);
		X509_free(x);
		BIO_free(b);
	}
	ERR_clear_error();
	if (!pkey) {
		snprintf(err, errlen, "no PEM public key or certificate in the file");
		return NULL;
	}
	if (!jwt_pkey_algs(pkey)) {
		snprintf(err, errlen, "the key is neither RSA (RS256) nor EC P-256 (ES256)");
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

/* ---------------------------------------------------------- signatures */
/* Digests fetched once: EVP_sha256() and friends make OpenSSL 3 look the
 * implementation up again (with a lock) on every use. */
static EVP_MD *md_fetched[3];
static pthread_once_t md_once = PTHREAD_ONCE_INIT;

static void md_fetch(void)
{
	md_fetched[0] = EVP_MD_fetch(NULL, "SHA256", NULL);
	md_fetched[1] = EVP_MD_fetch(NULL, "SHA384", NULL);
	md_fetched[2] = EVP_MD_fetch(NULL, "SHA512", NULL);
}

/* 0 SHA256 (HS256, RS256, ES256), 1 SHA384, 2 SHA512 */
static int alg_mdi(uint32_t bit)
{
	return bit == GWB_JWT_HS384 ? 1 : bit == GWB_JWT_HS512 ? 2 : 0;
}

static const EVP_MD *alg_md(uint32_t bit)
{
	pthread_once(&md_once, md_fetch);
	const EVP_MD *md = md_fetched[alg_mdi(bit)];
	if (md)
		return md;
	return bit == GWB_JWT_HS384 ? EVP_sha384() : bit == GWB_JWT_HS512 ? EVP_sha512()
	                                                                    : EVP_sha256();
}

struct jwt_hmac {
	EVP_MD_CTX *in[3], *out[3];    /* keyed with ipad / opad, per digest */
};

void jwt_hmac_free(jwt_hmac *h)
{
	if (!h)
		return;
	for (int i = 0; i < 3; i++) {
		EVP_MD_CTX_free(h->in[i]);
		EVP_MD_CTX_free(h->out[i]);
	}
	free(h);
}

jwt_hmac *jwt_hmac_new(const unsigned char *secret, size_t len)
{
	static const uint32_t bits[3] = { GWB_JWT_HS256, GWB_JWT_HS384, GWB_JWT_HS512 };
	jwt_hmac *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	for (int i = 0; i < 3; i++) {
		const EVP_MD *md = alg_md(bits[i]);
		int bs = EVP_MD_get_block_size(md);
		unsigned char key[128] = { 0 }, pad[128];
		unsigned int kl = 0;
		if (bs <= 0 || bs > (int)sizeof key)
			goto fail;
		/* RFC 2104: a key longer than the block is hashed first */
		if (len > (size_t)bs) {
			if (EVP_Digest(secret, len, key, &kl, md, NULL) != 1)
				goto fail;
		} else {
			memcpy(key, secret, len);
		}
		h->in[i] = EVP_MD_CTX_new();
		h->out[i] = EVP_MD_CTX_new();
		if (!h->in[i] || !h->out[i])
			goto fail;
		for (int j = 0; j < bs; j++)
			pad[j] = key[j] ^ 0x36;
		if (EVP_DigestInit_ex(h->in[i], md, NULL) != 1 ||
		    EVP_DigestUpdate(h->in[i], pad, (size_t)bs) != 1)
			goto fail;
		for (int j = 0; j < bs; j++)
			pad[j] = key[j] ^ 0x5c;
		if (EVP_DigestInit_ex(h->out[i], md, NULL) != 1 ||
		    EVP_DigestUpdate(h->out[i], pad, (size_t)bs) != 1)
			goto fail;
		OPENSSL_cleanse(key, sizeof key);
		OPENSSL_cleanse(pad, sizeof pad);
	}
	return h;
fail:
	jwt_hmac_free(h);
	return NULL;
}

static int hmac_prepared(const jwt_hmac *h, uint32_t bit, const char *data, size_t n,
                         unsigned char *md, unsigned int *mdlen)
{
	int i = alg_mdi(bit), ok;
	unsigned char inner[EVP_MAX_MD_SIZE];
	unsigned int il;
	EVP_MD_CTX *w = EVP_MD_CTX_new();
	ok = w && EVP_MD_CTX_copy_ex(w, h->in[i]) == 1 && EVP_DigestUpdate(w, data, n) == 1 &&
	     EVP_DigestFinal_ex(w, inner, &il) == 1 && EVP_MD_CTX_copy_ex(w, h->out[i]) == 1 &&
	     EVP_DigestUpdate(w, inner, il) == 1 && EVP_DigestFinal_ex(w, md, mdlen) == 1;
	EVP_MD_CTX_free(w);
	return ok;
}

static int verify_hmac(const jwt_key *k, uint32_t bit, const char *data, size_t n,
                       const unsigned char *sig, size_t slen)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (k->hmac) {
		if (!hmac_prepared(k->hmac, bit, data, n, md, &mdlen))
			return 0;
	} else {
		if (!k->secret || k->secret_len == 0 || k->secret_len > 0x7fffffff)
			return 0;
		if (!HMAC(alg_md(bit), k->secret, (int)k->secret_len,
		          (const unsigned char *)data, n, md, &mdlen))
			return 0;
	}
	return slen == mdlen && CRYPTO_memcmp(md, sig, mdlen) == 0;
}

static int verify_pkey(const jwt_key *k, uint32_t bit, const char *data, size_t n,
                       const unsigned char *sig, size_t slen)
{
	unsigned char *der = NULL;
	int ok = 0;
	if (bit == GWB_JWT_ES256) {
		/* JWS carries r||s (RFC 7518 3.4); EVP wants an ASN.1 ECDSA-Sig */
		if (slen != 64)
			return 0;
		ECDSA_SIG *es = ECDSA_SIG_new();
		BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
		if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
			ECDSA_SIG_free(es);
			BN_free(r);
			BN_free(s);
			return 0;
		}
		int dl = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (dl <= 0)
			return 0;
		sig = der;
		slen = (size_t)dl;
	} else if (slen != (size_t)EVP_PKEY_get_size(k->pkey)) {
		return 0;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx && EVP_DigestVerifyInit(ctx, NULL, alg_md(GWB_JWT_RS256), NULL, k->pkey) == 1)
		ok = EVP_DigestVerify(ctx, sig, slen, (const unsigned char *)data, n) == 1;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

/* --------------------------------------------------------------- tokens */
static json_t *decode_json(const char *seg, size_t n, int *st)
{
	unsigned char *buf = malloc(n / 4 * 3 + 3);
	if (!buf) {
		*st = JWT_NOMEM;
		return NULL;
	}
	long len = jwt_b64url_decode(seg, n, buf, n / 4 * 3 + 3);
	json_t *j = NULL;
	if (len > 0)
		j = json_loadb((const char *)buf, (size_t)len, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	if (!j)
		*st = JWT_MALFORMED;
	return j;
}

static int check_claims(const jwt_check *c, json_t *p)
{
	json_t *v;
	double now = (double)c->now, lw = (double)c->leeway;
	if ((v = json_object_get(p, "exp"))) {
		if (!json_is_number(v))
			return JWT_MALFORMED;
		if (now >= json_number_value(v) + lw)
			return JWT_EXPIRED;
	}
	if ((v = json_object_get(p, "nbf"))) {
		if (!json_is_number(v))
			return JWT_MALFORMED;
		if (now + lw < json_number_value(v))
			return JWT_NOT_YET_VALID;
	}
	if (c->iss) {
		v = json_object_get(p, "iss");
		if (!json_is_string(v) || strcmp(json_string_value(v), c->iss) != 0)
			return JWT_BAD_ISSUER;
	}
	if (c->aud) {
		v = json_object_get(p, "aud");
		int ok = 0;
		if (json_is_string(v)) {
			ok = !strcmp(json_string_value(v), c->aud);
		} else if (json_is_array(v)) {
			size_t i;
			json_t *e;
			json_array_foreach(v, i, e)
				ok |= json_is_string(e) && !strcmp(json_string_value(e), c->aud);
		}
		if (!ok)
			return JWT_BAD_AUDIENCE;
	}
	return JWT_OK;
}

int jwt_verify(const jwt_key *k, const jwt_check *c, const char *tok, size_t n,
               json_t **claims)
{
	*claims = NULL;
	if (n == 0 || n > JWT_MAX_LEN)
		return JWT_MALFORMED;
	const char *d1 = memchr(tok, '.', n);
	const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(tok + n - d1 - 1)) : NULL;
	/* an empty signature is refused below, after the alg check, so that
	 * an unsecured token ("alg":"none") is reported as such */
	if (!d1 || !d2 || memchr(d2 + 1, '.', (size_t)(tok + n - d2 - 1)) ||
	    d1 == tok || d2 == d1 + 1)
		return JWT_MALFORMED;

	int st = JWT_OK;
	json_t *hdr = decode_json(tok, (size_t)(d1 - tok), &st);
	if (!hdr)
		return st;
	json_t *alg = json_object_get(hdr, "alg");
	uint32_t bit = json_is_string(alg) ? jwt_alg_bit(json_string_value(alg)) : 0;
	int crit = json_object_get(hdr, "crit") != NULL;
	json_decref(hdr);
	if (crit)
		return JWT_MALFORMED;
	if (!bit || !(k->algs & bit))
		return JWT_BAD_ALG;
	int hmac = bit & (GWB_JWT_HS256 | GWB_JWT_HS384 | GWB_JWT_HS512);
	if (!hmac && !(jwt_pkey_algs(k->pkey) & bit))
		return JWT_BAD_ALG;

	size_t sn = (size_t)(tok + n - d2 - 1);
	if (sn == 0)
		return JWT_MALFORMED;
	unsigned char *sig = malloc(sn / 4 * 3 + 3);
	if (!sig)
		return JWT_NOMEM;
	long slen = jwt_b64url_decode(d2 + 1, sn, sig, sn / 4 * 3 + 3);
	int ok = 0;
	if (slen > 0)
		ok = hmac ? verify_hmac(k, bit, tok, (size_t)(d2 - tok), sig, (size_t)slen)
		          : verify_pkey(k, bit, tok, (size_t)(d2 - tok), sig, (size_t)slen);
	free(sig);
	if (slen <= 0)
		return JWT_MALFORMED;
	if (!ok)
		return JWT_BAD_SIGNATURE;

	json_t *p = decode_json(d1 + 1, (size_t)(d2 - d1 - 1), &st);
	if (!p)
		return st;
	st = check_claims(c, p);
	if (st != JWT_OK) {
		json_decref(p);
		return st;
	}
	*claims = p;
	return JWT_OK;
}

const char *jwt_strerror(int status)
{
	switch (status) {
	case JWT_OK: return "ok";
	case JWT_MALFORMED: return "malformed token";
	case JWT_BAD_ALG: return "algorithm not allowed";
	case JWT_BAD_SIGNATURE: return "bad signature";
	case JWT_EXPIRED: return "token expired";
	case JWT_NOT_YET_VALID: return "token not yet valid";
	case JWT_BAD_ISSUER: return "wrong issuer";
	case JWT_BAD_AUDIENCE: return "wrong audience";
	case JWT_NOMEM: return "out of memory";
	default: return "invalid token";
	}
}
