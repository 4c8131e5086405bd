/*
 * test_jwt.c — the JWT verifier (runtime/plugins/jwt.c) on tokens this
 * test signs itself with OpenSSL: HS256/384/512 with secrets, RS256 and
 * ES256 with keys generated here. Valid tokens, and every refusal the
 * verifier documents: wrong alg (none, HS256 signed with the RS256 public
 * key, an alg the key cannot verify), bad and tampered signatures,
 * exp/nbf with and without leeway, iss/aud, malformed structure and
 * non-canonical base64url.
 */
#include <config.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "gwb.h"
#include "jwt.h"

#define NOW 1700000000

static EVP_PKEY *rsa_priv, *ec_priv;      /* generated once per process */
static EVP_PKEY *rsa_pub, *ec_pub;        /* parsed back from PEM */
static char *rsa_pem;                     /* rsa_pub as PEM text */

/* ------------------------------------------------------------ helpers */
static char *b64url(const void *data, size_t n)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = malloc(n / 3 * 4 + 5), *o = out;
	size_t i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
		*o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;
		*o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63]; *o++ = tab[(v >> 6) & 63];
	}
	*o = '\0';
	return out;
}

static char *b64url_s(const char *s) { return b64url(s, strlen(s)); }

/* the signature of input with alg (GWB_JWT_* bit), as raw JWS bytes */
static unsigned char *sign(uint32_t alg, const char *input, const void *secret, size_t slen,
                           size_t *siglen)
{
	unsigned char *sig = malloc(1024);
	if (alg & (GWB_JWT_HS256 | GWB_JWT_HS384 | GWB_JWT_HS512)) {
		const EVP_MD *md = alg == GWB_JWT_HS256 ? EVP_sha256()
		                 : alg == GWB_JWT_HS384 ? EVP_sha384() : EVP_sha512();
		unsigned int l;
		HMAC(md, secret, (int)slen, (const unsigned char *)input, strlen(input), sig, &l);
		*siglen = l;
		return sig;
	}
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t l = 1024;
	ck_assert_int_eq(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL,
	                                    alg == GWB_JWT_RS256 ? rsa_priv : ec_priv), 1);
	ck_assert_int_eq(EVP_DigestSign(ctx, sig, &l, (const unsigned char *)input,
	                                strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	if (alg == GWB_JWT_ES256) {
		/* DER -> r||s */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)l);
		ck_assert_ptr_nonnull(es);
		unsigned char *raw = malloc(64);
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32);
		ECDSA_SIG_free(es);
		free(sig);
		*siglen = 64;
		return raw;
	}
	*siglen = l;
	return sig;
}

/* header.payload.signature; alg_name goes into the header, alg says how
 * to sign (0: no signature) */
static char *token(const char *alg_name, uint32_t alg, const char *payload,
                   const void *secret, size_t slen)
{
	char hdr[128];
	snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg_name);
	char *h = b64url_s(hdr), *p = b64url_s(payload);
	size_t n = strlen(h) + strlen(p) + 2;
	char *input = malloc(n);
	snprintf(input, n, "%s.%s", h, p);
	char *s = strdup("");
	if (alg) {
		size_t sl;
		unsigned char *sig = sign(alg, input, secret, slen, &sl);
		free(s);
		s = b64url(sig, sl);
		free(sig);
	}
	char *out = malloc(n + strlen(s) + 1);
	sprintf(out, "%s.%s", input, s);
	free(h); free(p); free(input); free(s);
	return out;
}

static const char secret[] = "0123456789abcdef0123456789abcdef";

static int verify(uint32_t algs, const char *tok, const char *iss, const char *aud,
                  uint32_t leeway, json_t **claims)
{
	jwt_key k = { .algs = algs, .secret = (const unsigned char *)secret,
	              .secret_len = strlen(secret) };
	if (algs & GWB_JWT_RS256)
		k.pkey = rsa_pub;
	if (algs == GWB_JWT_ES256)
		k.pkey = ec_pub;
	jwt_check c = { .now = NOW, .leeway = leeway, .iss = iss, .aud = aud };
	json_t *tmp;
	int rc = jwt_verify(&k, &c, tok, strlen(tok), claims ? claims : &tmp);
	if (!claims && rc == JWT_OK)
		json_decref(tmp);
	/* the prepared secret (what gwd uses) answers the same */
	jwt_hmac *h = jwt_hmac_new((const unsigned char *)secret, strlen(secret));
	ck_assert_ptr_nonnull(h);
	jwt_key kp = k;
	kp.hmac = h;
	kp.secret = NULL;
	kp.secret_len = 0;
	int rc2 = jwt_verify(&kp, &c, tok, strlen(tok), &tmp);
	if (rc2 == JWT_OK)
		json_decref(tmp);
	jwt_hmac_free(h);
	ck_assert_msg(rc == rc2, "raw secret: %s, prepared: %s", jwt_strerror(rc),
	              jwt_strerror(rc2));
	return rc;
}

static void setup_keys(void)
{
	if (rsa_priv)
		return;
	rsa_priv = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	ec_priv = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ck_assert_ptr_nonnull(rsa_priv);
	ck_assert_ptr_nonnull(ec_priv);
	char err[256];
	for (int i = 0; i < 2; i++) {
		BIO *b = BIO_new(BIO_s_mem());
		PEM_write_bio_PUBKEY(b, i ? ec_priv : rsa_priv);
		char *pem;
		long n = BIO_get_mem_data(b, &pem);
		EVP_PKEY *pk = jwt_pkey_from_pem(pem, (size_t)n, err, sizeof err);
		ck_assert_msg(pk != NULL, "%s", err);
		if (i) {
			ec_pub = pk;
		} else {
			rsa_pub = pk;
			rsa_pem = strndup(pem, (size_t)n);
		}
		BIO_free(b);
	}
}

/* -------------------------------------------------------------- tests */
START_TEST(hmac_valid)
{
	static const struct { const char *name; uint32_t bit; } a[] = {
		{ "HS256", GWB_JWT_HS256 }, { "HS384", GWB_JWT_HS384 }, { "HS512", GWB_JWT_HS512 },
	};
	for (int i = 0; i < 3; i++) {
		char *t = token(a[i].name, a[i].bit, "{\"sub\":\"alice\",\"exp\":1700000100}",
		                secret, strlen(secret));
		json_t *cl;
		ck_assert_int_eq(verify(a[i].bit, t, NULL, NULL, 0, &cl), JWT_OK);
		ck_assert_str_eq(json_string_value(json_object_get(cl, "sub")), "alice");
		json_decref(cl);
		/* a directive allowing several HMAC algorithms */
		ck_assert_int_eq(verify(GWB_JWT_HS256 | GWB_JWT_HS384 | GWB_JWT_HS512, t,
		                        NULL, NULL, 0, NULL), JWT_OK);
		/* one that allows only another */
		ck_assert_int_eq(verify(a[(i + 1) % 3].bit, t, NULL, NULL, 0, NULL), JWT_BAD_ALG);
		free(t);
	}
}
END_TEST

/* secrets longer than the digest's block are hashed first (RFC 2104) */
START_TEST(hmac_long_and_short_secrets)
{
	static const struct { const char *name; uint32_t bit; } a[] = {
		{ "HS256", GWB_JWT_HS256 }, { "HS384", GWB_JWT_HS384 }, { "HS512", GWB_JWT_HS512 },
	};
	size_t lens[] = { 1, 63, 64, 65, 127, 128, 129, 300 };
	unsigned char sec[300];
	for (size_t i = 0; i < sizeof sec; i++)
		sec[i] = (unsigned char)(i * 7 + 1);
	jwt_check c = { .now = NOW };
	for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
		jwt_hmac *h = jwt_hmac_new(sec, lens[l]);
		ck_assert_ptr_nonnull(h);
		for (int i = 0; i < 3; i++) {
			char *t = token(a[i].name, a[i].bit, "{\"sub\":\"x\"}", sec, lens[l]);
			jwt_key k = { .algs = a[i].bit, .hmac = h };
			json_t *cl;
			ck_assert_msg(jwt_verify(&k, &c, t, strlen(t), &cl) == JWT_OK, "%s, %zu bytes",
			              a[i].name, lens[l]);
			json_decref(cl);
			/* one byte less of secret is another secret */
			jwt_hmac *h2 = jwt_hmac_new(sec, lens[l] - 1 ? lens[l] - 1 : 2);
			k.hmac = h2;
			ck_assert_int_eq(jwt_verify(&k, &c, t, strlen(t), &cl), JWT_BAD_SIGNATURE);
			jwt_hmac_free(h2);
			free(t);
		}
		jwt_hmac_free(h);
	}
}
END_TEST

START_TEST(hmac_wrong_secret)
{
	char *t = token("HS256", GWB_JWT_HS256, "{\"sub\":\"a\"}", "other", 5);
	ck_assert_int_eq(verify(GWB_JWT_HS256, t, NULL, NULL, 0, NULL), JWT_BAD_SIGNATURE);
	free(t);
}
END_TEST

START_TEST(rs256_es256_valid)
{
	setup_keys();
	char *t = token("RS256", GWB_JWT_RS256, "{\"sub\":\"r\"}", NULL, 0);
	json_t *cl;
	ck_assert_int_eq(verify(GWB_JWT_RS256, t, NULL, NULL, 0, &cl), JWT_OK);
	ck_assert_str_eq(json_string_value(json_object_get(cl, "sub")), "r");
	json_decref(cl);
	free(t);
	t = token("ES256", GWB_JWT_ES256, "{\"sub\":\"e\"}", NULL, 0);
	ck_assert_int_eq(verify(GWB_JWT_ES256, t, NULL, NULL, 0, &cl), JWT_OK);
	ck_assert_str_eq(json_string_value(json_object_get(cl, "sub")), "e");
	json_decref(cl);
	/* an ES256 token against an RSA key, although the directive lists
	 * both algorithms: the key cannot verify it */
	ck_assert_int_eq(verify(GWB_JWT_RS256 | GWB_JWT_ES256, t, NULL, NULL, 0, NULL),
	                 JWT_BAD_ALG);
	free(t);
}
END_TEST

START_TEST(es256_signature_forms)
{
	setup_keys();
	/* a DER signature (what EVP produces) is not the JWS form */
	char hdr[] = "{\"alg\":\"ES256\"}";
	char *h = b64url_s(hdr), *p = b64url_s("{\"sub\":\"e\"}");
	char input[512];
	snprintf(input, sizeof input, "%s.%s", h, p);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char der[128];
	size_t dl = sizeof der;
	EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, ec_priv);
	EVP_DigestSign(ctx, der, &dl, (unsigned char *)input, strlen(input));
	EVP_MD_CTX_free(ctx);
	char *s = b64url(der, dl);
	char tok[1024];
	snprintf(tok, sizeof tok, "%s.%s", input, s);
	ck_assert_int_eq(verify(GWB_JWT_ES256, tok, NULL, NULL, 0, NULL), JWT_BAD_SIGNATURE);
	/* r||s of zeros */
	unsigned char zero[64] = { 0 };
	free(s);
	s = b64url(zero, 64);
	snprintf(tok, sizeof tok, "%s.%s", input, s);
	ck_assert_int_eq(verify(GWB_JWT_ES256, tok, NULL, NULL, 0, NULL), JWT_BAD_SIGNATURE);
	free(s); free(h); free(p);
}
END_TEST

START_TEST(alg_none_refused)
{
	setup_keys();
	/* unsecured JWS: empty signature, and with a signature anyway */
	char *t = token("none", 0, "{\"sub\":\"admin\"}", NULL, 0);
	ck_assert_int_eq(verify(GWB_JWT_HS256, t, NULL, NULL, 0, NULL), JWT_BAD_ALG);
	ck_assert_int_eq(verify(GWB_JWT_RS256, t, NULL, NULL, 0, NULL), JWT_BAD_ALG);
	free(t);
	t = token("none", GWB_JWT_HS256, "{\"sub\":\"admin\"}", secret, strlen(secret));
	ck_assert_int_eq(verify(GWB_JWT_HS256, t, NULL, NULL, 0, NULL), JWT_BAD_ALG);
	free(t);
	/* other spellings are not "HS256" either */
	t = token("hs256", GWB_JWT_HS256, "{\"sub\":\"a\"}", secret, strlen(secret));
	ck_assert_int_eq(verify(GWB_JWT_HS256, t, NULL, NULL, 0, NULL), JWT_BAD_ALG);
	free(t);
}
END_TEST

START_TEST(key_confusion_refused)
{
	setup_keys();
	/* the classic attack: sign HS256 with the RS256 public key (PEM text)
	 * as the HMAC secret */
	char *t = token("HS256", GWB_JWT_HS256, "{\"sub\":\"admin\"}", rsa_pem, strlen(rsa_pem));
	ck_assert_int_eq(verify(GWB_JWT_RS256, t, NULL, NULL, 0, NULL), JWT_BAD_ALG);
	free(t);
	/* and an RS256 token where only HMAC is configured */
	t = token("RS256", GWB_JWT_RS256, "{\"sub\":\"a\"}", NULL, 0);
	ck_assert_int_eq(verify(GWB_JWT_HS256, t, NULL, NULL, 0, NULL), JWT_BAD_ALG);
	free(t);
}
END_TEST

START_TEST(tampered)
{
	setup_keys();
	uint32_t algs[] = { GWB_JWT_HS256, GWB_JWT_RS256, GWB_JWT_ES256 };
	const char *names[] = { "HS256", "RS256", "ES256" };
	for (int i = 0; i < 3; i++) {
		char *t = token(names[i], algs[i], "{\"sub\":\"user\",\"admin\":false}",
		                secret, strlen(secret));
		/* swap the payload for another, keep header and signature */
		char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
		char *p2 = b64url_s("{\"sub\":\"user\",\"admin\":true}");
		char buf[2048];
		snprintf(buf, sizeof buf, "%.*s.%s%s", (int)(d1 - t), t, p2, d2);
		ck_assert_int_eq(verify(algs[i], buf, NULL, NULL, 0, NULL), JWT_BAD_SIGNATURE);
		/* one flipped bit in the signature */
		strcpy(buf, t);
		char *last = buf + strlen(buf) - 2;
		*last = *last == 'A' ? 'B' : 'A';
		ck_assert_int_eq(verify(algs[i], buf, NULL, NULL, 0, NULL), JWT_BAD_SIGNATURE);
		/* the signature cut short */
		strcpy(buf, t);
		buf[strlen(buf) - 4] = '\0';
		int rc = verify(algs[i], buf, NULL, NULL, 0, NULL);
		/* shorter, and its last characters may not be a canonical end */
		ck_assert_msg(rc == JWT_BAD_SIGNATURE || rc == JWT_MALFORMED, "%s", jwt_strerror(rc));
		free(p2);
		free(t);
	}
}
END_TEST

START_TEST(exp_nbf_leeway)
{
	char buf[128];
	struct { const char *claims; uint32_t leeway; int want; } c[] = {
		{ "\"exp\":1700000001", 0, JWT_OK },
		{ "\"exp\":1700000000", 0, JWT_EXPIRED },        /* exp is exclusive */
		{ "\"exp\":1699999999", 0, JWT_EXPIRED },
		{ "\"exp\":1699999995", 10, JWT_OK },
		{ "\"exp\":1699999990", 10, JWT_EXPIRED },
		{ "\"exp\":1700000000.5", 0, JWT_OK },
		{ "\"nbf\":1700000000", 0, JWT_OK },
		{ "\"nbf\":1700000001", 0, JWT_NOT_YET_VALID },
		{ "\"nbf\":1700000030", 60, JWT_OK },
		{ "\"nbf\":1700000100,\"exp\":1700000200", 0, JWT_NOT_YET_VALID },
		{ "\"exp\":\"1700000100\"", 0, JWT_MALFORMED },  /* not a number */
		{ "\"nbf\":null", 0, JWT_MALFORMED },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		snprintf(buf, sizeof buf, "{\"sub\":\"a\",%s}", c[i].claims);
		char *t = token("HS256", GWB_JWT_HS256, buf, secret, strlen(secret));
		ck_assert_msg(verify(GWB_JWT_HS256, t, NULL, NULL, c[i].leeway, NULL) == c[i].want,
		              "%s leeway %u: want %s", c[i].claims, c[i].leeway,
		              jwt_strerror(c[i].want));
		free(t);
	}
}
END_TEST

START_TEST(iss_aud)
{
	struct { const char *claims, *iss, *aud; int want; } c[] = {
		{ "\"iss\":\"https://id.example\"", "https://id.example", NULL, JWT_OK },
		{ "\"iss\":\"https://evil.example\"", "https://id.example", NULL, JWT_BAD_ISSUER },
		{ "\"sub\":\"x\"", "https://id.example", NULL, JWT_BAD_ISSUER },
		{ "\"iss\":[\"https://id.example\"]", "https://id.example", NULL, JWT_BAD_ISSUER },
		{ "\"aud\":\"api\"", NULL, "api", JWT_OK },
		{ "\"aud\":[\"web\",\"api\"]", NULL, "api", JWT_OK },
		{ "\"aud\":[\"web\",\"apis\"]", NULL, "api", JWT_BAD_AUDIENCE },
		{ "\"aud\":\"web\"", NULL, "api", JWT_BAD_AUDIENCE },
		{ "\"aud\":7", NULL, "api", JWT_BAD_AUDIENCE },
		{ "\"sub\":\"x\"", NULL, "api", JWT_BAD_AUDIENCE },
		{ "\"iss\":\"i\",\"aud\":\"a\"", "i", "a", JWT_OK },
		{ "\"aud\":\"anything\"", NULL, NULL, JWT_OK },   /* not configured */
	};
	char buf[256];
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		snprintf(buf, sizeof buf, "{%s}", c[i].claims);
		char *t = token("HS256", GWB_JWT_HS256, buf, secret, strlen(secret));
		ck_assert_msg(verify(GWB_JWT_HS256, t, c[i].iss, c[i].aud, 0, NULL) == c[i].want,
		              "%s: want %s", c[i].claims, jwt_strerror(c[i].want));
		free(t);
	}
}
END_TEST

START_TEST(malformed)
{
	char *good = token("HS256", GWB_JWT_HS256, "{\"sub\":\"a\"}", secret, strlen(secret));
	char buf[1024];
	const char *bad[] = { "", ".", "..", "a.b", "a.b.c.d", "abc" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(verify(GWB_JWT_HS256, bad[i], NULL, NULL, 0, NULL) == JWT_MALFORMED,
		              "'%s'", bad[i]);
	/* a fourth segment */
	snprintf(buf, sizeof buf, "%s.x", good);
	ck_assert_int_eq(verify(GWB_JWT_HS256, buf, NULL, NULL, 0, NULL), JWT_MALFORMED);
	/* padding is not base64url as JWS uses it */
	snprintf(buf, sizeof buf, "%s=", good);
	ck_assert_int_eq(verify(GWB_JWT_HS256, buf, NULL, NULL, 0, NULL), JWT_MALFORMED);
	/* whitespace inside */
	snprintf(buf, sizeof buf, " %s", good);
	ck_assert_int_eq(verify(GWB_JWT_HS256, buf, NULL, NULL, 0, NULL), JWT_MALFORMED);
	/* standard base64 alphabet in the signature */
	strcpy(buf, good);
	strrchr(buf, '.')[1] = '+';
	ck_assert_int_eq(verify(GWB_JWT_HS256, buf, NULL, NULL, 0, NULL), JWT_MALFORMED);
	free(good);

	/* headers and payloads that are not what they should be */
	struct { const char *hdr, *payload; } j[] = {
		{ "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"sub\":\"a\"}" },
		{ "[\"HS256\"]", "{\"sub\":\"a\"}" },
		{ "{\"alg\":\"HS256\"", "{\"sub\":\"a\"}" },
		{ "{\"alg\":\"HS256\"}", "[1,2]" },
		{ "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"sub\":\"admin\"}" },   /* duplicate */
		{ "{\"alg\":\"HS256\"}", "\"sub\"" },
	};
	for (size_t i = 0; i < sizeof j / sizeof j[0]; i++) {
		char *h = b64url_s(j[i].hdr), *p = b64url_s(j[i].payload);
		char input[512];
		snprintf(input, sizeof input, "%s.%s", h, p);
		size_t sl;
		unsigned char *sig = sign(GWB_JWT_HS256, input, secret, strlen(secret), &sl);
		char *s = b64url(sig, sl);
		snprintf(buf, sizeof buf, "%s.%s", input, s);
		ck_assert_msg(verify(GWB_JWT_HS256, buf, NULL, NULL, 0, NULL) == JWT_MALFORMED,
		              "%s . %s", j[i].hdr, j[i].payload);
		free(h); free(p); free(sig); free(s);
	}
	/* alg missing or not a string */
	char *h = b64url_s("{\"alg\":256}");
	snprintf(buf, sizeof buf, "%s.e30.AAAA", h);
	ck_assert_int_eq(verify(GWB_JWT_HS256, buf, NULL, NULL, 0, NULL), JWT_BAD_ALG);
	free(h);
	/* too long */
	char *huge = malloc(JWT_MAX_LEN + 2);
	memset(huge, 'a', JWT_MAX_LEN + 1);
	huge[JWT_MAX_LEN + 1] = '\0';
	huge[10] = huge[20] = '.';
	ck_assert_int_eq(verify(GWB_JWT_HS256, huge, NULL, NULL, 0, NULL), JWT_MALFORMED);
	free(huge);
}
END_TEST

START_TEST(b64url_strict)
{
	unsigned char out[64];
	ck_assert_int_eq(jwt_b64url_decode("", 0, out, sizeof out), 0);
	ck_assert_int_eq(jwt_b64url_decode("QQ", 2, out, sizeof out), 1);
	ck_assert_int_eq(out[0], 'A');
	ck_assert_int_eq(jwt_b64url_decode("QUI", 3, out, sizeof out), 2);
	ck_assert_int_eq(memcmp(out, "AB", 2), 0);
	ck_assert_int_eq(jwt_b64url_decode("QUJD", 4, out, sizeof out), 3);
	ck_assert_int_eq(memcmp(out, "ABC", 3), 0);
	/* non-zero unused bits: another spelling of "A" */
	ck_assert_int_eq(jwt_b64url_decode("QR", 2, out, sizeof out), -1);
	ck_assert_int_eq(jwt_b64url_decode("QUJ", 3, out, sizeof out), -1);
	/* impossible length, padding, other alphabets, whitespace */
	ck_assert_int_eq(jwt_b64url_decode("QUJDR", 5, out, sizeof out), -1);
	ck_assert_int_eq(jwt_b64url_decode("QQ==", 4, out, sizeof out), -1);
	ck_assert_int_eq(jwt_b64url_decode("+/8A", 4, out, sizeof out), -1);
	ck_assert_int_eq(jwt_b64url_decode("-_8A", 4, out, sizeof out), 3);
	ck_assert_int_eq(out[0], 0xfb);
	ck_assert_int_eq(jwt_b64url_decode("QU JD", 5, out, sizeof out), -1);
	/* out too small */
	ck_assert_int_eq(jwt_b64url_decode("QUJD", 4, out, 2), -1);
}
END_TEST

START_TEST(pem_keys)
{
	setup_keys();
	char err[256];
	ck_assert_ptr_null(jwt_pkey_from_pem("hello", 5, err, sizeof err));
	ck_assert_str_eq(err, "no PEM public key or certificate in the file");
	ck_assert_uint_eq(jwt_pkey_algs(rsa_pub), GWB_JWT_RS256);
	ck_assert_uint_eq(jwt_pkey_algs(ec_pub), GWB_JWT_ES256);
	/* P-384 is not ES256's curve */
	EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	BIO *b = BIO_new(BIO_s_mem());
	PEM_write_bio_PUBKEY(b, p384);
	char *pem;
	long n = BIO_get_mem_data(b, &pem);
	ck_assert_ptr_null(jwt_pkey_from_pem(pem, (size_t)n, err, sizeof err));
	ck_assert_str_eq(err, "the key is neither RSA (RS256) nor EC P-256 (ES256)");
	BIO_free(b);
	EVP_PKEY_free(p384);
	/* a self-signed certificate's key is accepted */
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, ec_priv);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	ck_assert_int_gt(X509_sign(x, ec_priv, EVP_sha256()), 0);
	b = BIO_new(BIO_s_mem());
	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &pem);
	EVP_PKEY *k = jwt_pkey_from_pem(pem, (size_t)n, err, sizeof err);
	ck_assert_msg(k != NULL, "%s", err);
	ck_assert_uint_eq(jwt_pkey_algs(k), GWB_JWT_ES256);
	EVP_PKEY_free(k);
	BIO_free(b);
	X509_free(x);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("jwt");
	TCase *t = tcase_create("verify");
	tcase_set_timeout(t, 60);
	tcase_add_test(t, hmac_valid);
	tcase_add_test(t, hmac_long_and_short_secrets);
	tcase_add_test(t, hmac_wrong_secret);
	tcase_add_test(t, rs256_es256_valid);
	tcase_add_test(t, es256_signature_forms);
	tcase_add_test(t, alg_none_refused);
	tcase_add_test(t, key_confusion_refused);
	tcase_add_test(t, tampered);
	tcase_add_test(t, exp_nbf_leeway);
	tcase_add_test(t, iss_aud);
	tcase_add_test(t, malformed);
	tcase_add_test(t, b64url_strict);
	tcase_add_test(t, pem_keys);
	suite_add_tcase(s, t);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
