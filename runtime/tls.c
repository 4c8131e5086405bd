/*
 * tls.c — see tls.h.
 *
 * Client side. A certificate set (tls_ctx) holds, for the default
 * certificate and each `certificates:` entry, the chain as GnuTLS
 * pcerts and the private key, plus a sorted list of the names they serve
 * (exact "a.example.com" and wildcard "*.example.com", lowercase). The
 * certificate callback runs once per handshake on the worker that owns
 * the connection: it takes a reference on the current set for the
 * connection (kept until the connection closes, since GnuTLS keeps
 * pointing at the chain and key it was given), finds the SNI name by
 * binary search (exact, then "*." + the name minus its first label) and,
 * when a client CA is configured, asks for a client certificate and
 * installs a verify function that checks it against the set's trust list
 * while the handshake runs: a missing or bad client certificate fails the
 * handshake, no request is ever seen.
 *
 * Which connection a GnuTLS session belongs to: libmicrohttpd sets the
 * session pointer to its MHD_Connection (gnutls_session_set_ptr), and the
 * connection's socket context is gwd's gw_conn (srv.c conn_cb).
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "log.h"
#include "tls.h"

#define TLS_MAX_FILE   (1u << 20)      /* a PEM file larger than 1 MB is a mistake */
#define TLS_MAX_CHAIN  16              /* client chain certificates looked at */
#define TLS_MAX_NAME   255

typedef struct tls_cert {
	gnutls_pcert_st *pc; unsigned npc;   /* chain, leaf first */
	gnutls_privkey_t key;
} tls_cert;

typedef struct tls_name {
	char *name;                          /* lowercase; "*.x.y" for wildcards */
	size_t cert;                         /* index in certs */
} tls_name;

struct tls_ctx {
	atomic_int refs;                     /* 1 while current + 1 per connection */
	tls_cert *certs; size_t ncerts;      /* [0]: the default certificate */
	tls_name *names; size_t nnames;      /* sorted by name, then cert */
	gnutls_x509_trust_list_t ca;         /* client_ca; NULL = none */
	int min_version;                     /* as configured (12, 13) */
};

static pthread_mutex_t cur_mu = PTHREAD_MUTEX_INITIALIZER;
static tls_ctx *cur;
static int cur_min_version;              /* what the daemons were started with */
static char prio[128];
static struct MHD_OptionItem mhd_opts[3];

/* --------------------------------------------------------------- files */
static int read_pem(const char *what, const char *path, gnutls_datum_t *out,
                    char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TLS_MAX_FILE) {
		snprintf(err, errlen, "%s %s: not a regular file of at most %u bytes", what, path,
		         TLS_MAX_FILE);
		close(fd);
		return -1;
	}
	unsigned char *buf = malloc((size_t)st.st_size + 1);
	size_t n = 0;
	while (buf && n < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + n, (size_t)st.st_size - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	close(fd);
	if (!buf) {
		snprintf(err, errlen, "%s %s: out of memory", what, path);
		return -1;
	}
	buf[n] = '\0';
	out->data = buf;
	out->size = (unsigned)n;
	return 0;
}

/* ------------------------------------------------------ certificate set */
static void cert_free(tls_cert *c)
{
	for (unsigned i = 0; i < c->npc; i++)
		gnutls_pcert_deinit(&c->pc[i]);
	free(c->pc);
	if (c->key)
		gnutls_privkey_deinit(c->key);
	memset(c, 0, sizeof *c);
}

static void ctx_free(tls_ctx *x)
{
	if (!x)
		return;
	for (size_t i = 0; i < x->ncerts; i++)
		cert_free(&x->certs[i]);
	free(x->certs);
	for (size_t i = 0; i < x->nnames; i++)
		free(x->names[i].name);
	free(x->names);
	if (x->ca)
		gnutls_x509_trust_list_deinit(x->ca, 1);
	free(x);
}

static void ctx_release(tls_ctx *x)
{
	if (x && atomic_fetch_sub_explicit(&x->refs, 1, memory_order_acq_rel) == 1)
		ctx_free(x);
}

static int add_name(tls_ctx *x, size_t *cap, const char *name, size_t len, size_t cert)
{
	while (len && name[len - 1] == '.')
		len--;
	if (len == 0 || len > TLS_MAX_NAME)
		return 0;                     /* not a host name: never matches */
	for (size_t i = 0; i < x->nnames; i++)
		if (x->names[i].cert == cert && strlen(x->names[i].name) == len &&
		    !strncasecmp(x->names[i].name, name, len))
			return 0;
	if (x->nnames == *cap) {
		size_t nc = *cap ? *cap * 2 : 8;
		tls_name *v = realloc(x->names, nc * sizeof *v);
		if (!v)
			return -1;
		x->names = v;
		*cap = nc;
	}
	char *s = malloc(len + 1);
	if (!s)
		return -1;
	for (size_t i = 0; i < len; i++)
		s[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	s[len] = '\0';
	x->names[x->nnames].name = s;
	x->names[x->nnames].cert = cert;
	x->nnames++;
	return 0;
}

/* the names a leaf certificate serves: its DNS SANs, or its CN without */
static int cert_names(tls_ctx *x, size_t *cap, gnutls_x509_crt_t crt, size_t cert)
{
	int any = 0;
	for (unsigned i = 0;; i++) {
		char buf[TLS_MAX_NAME + 2];
		size_t n = sizeof buf;
		unsigned critical;
		int t = gnutls_x509_crt_get_subject_alt_name(crt, i, buf, &n, &critical);
		if (t == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (t == GNUTLS_E_SHORT_MEMORY_BUFFER)
			continue;                 /* longer than any host name */
		if (t < 0)
			break;
		if (t == GNUTLS_SAN_DNSNAME) {
			any = 1;
			if (add_name(x, cap, buf, n, cert) != 0)
				return -1;
		}
	}
	if (!any) {
		char buf[TLS_MAX_NAME + 2];
		size_t n = sizeof buf;
		if (gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &n) == 0 &&
		    add_name(x, cap, buf, n, cert) != 0)
			return -1;
	}
	return 0;
}

/* 1 if key is the private half of the leaf's public key */
static int key_matches(gnutls_pcert_st *leaf, gnutls_privkey_t key)
{
	gnutls_pubkey_t pub;
	unsigned char a[64], b[64];
	size_t al = sizeof a, bl = sizeof b;
	if (gnutls_pubkey_init(&pub) < 0)
		return 0;
	int ok = gnutls_pubkey_import_privkey(pub, key, 0, 0) == 0 &&
	         gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &al) == 0 &&
	         gnutls_pubkey_get_key_id(leaf->pubkey, GNUTLS_KEYID_USE_SHA256, b, &bl) == 0 &&
	         al == bl && !memcmp(a, b, al);
	gnutls_pubkey_deinit(pub);
	return ok;
}

static int load_cert(tls_ctx *x, size_t *cap, size_t idx, const char *what, const char *cpath,
                     const char *kpath, char *err, size_t errlen)
{
	tls_cert *c = &x->certs[idx];
	gnutls_datum_t cd = { 0 }, kd = { 0 };
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0;
	int rc = -1, e;
	char cw[64], kw[64];
	snprintf(cw, sizeof cw, "%s.cert", what);
	snprintf(kw, sizeof kw, "%s.key", what);
	if (read_pem(cw, cpath, &cd, err, errlen) != 0 || read_pem(kw, kpath, &kd, err, errlen) != 0)
		goto out;
	if ((e = gnutls_x509_crt_list_import2(&crts, &ncrt, &cd, GNUTLS_X509_FMT_PEM, 0)) < 0 ||
	    ncrt == 0) {
		snprintf(err, errlen, "%s %s: not a PEM certificate (%s)", cw, cpath,
		         e < 0 ? gnutls_strerror(e) : "no certificate found");
		goto out;
	}
	time_t now = time(NULL);
	if (gnutls_x509_crt_get_expiration_time(crts[0]) < now)
		log_warn("%s %s: the certificate has expired", cw, cpath);
	if (!(c->pc = calloc(ncrt, sizeof *c->pc))) {
		snprintf(err, errlen, "%s %s: out of memory", cw, cpath);
		goto out;
	}
	unsigned npc = ncrt;
	if ((e = gnutls_pcert_import_x509_list(c->pc, crts, &npc, 0)) < 0) {
		snprintf(err, errlen, "%s %s: %s", cw, cpath, gnutls_strerror(e));
		goto out;
	}
	c->npc = npc;
	if (gnutls_privkey_init(&c->key) < 0) {
		c->key = NULL;
		snprintf(err, errlen, "%s %s: out of memory", kw, kpath);
		goto out;
	}
	if ((e = gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		snprintf(err, errlen, "%s %s: not a PEM private key without a password (%s)", kw, kpath,
		         gnutls_strerror(e));
		goto out;
	}
	if (!key_matches(&c->pc[0], c->key)) {
		snprintf(err, errlen, "%s %s does not match the certificate %s %s", kw, kpath, cw, cpath);
		goto out;
	}
	if (cert_names(x, cap, crts[0], idx) != 0) {
		snprintf(err, errlen, "%s %s: out of memory", cw, cpath);
		goto out;
	}
	rc = 0;
out:
	for (unsigned i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	free(cd.data);
	if (kd.data) {
		memset(kd.data, 0, kd.size);      /* key material: do not leave it in the heap */
		free(kd.data);
	}
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	const tls_name *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->cert > y->cert) - (x->cert < y->cert);
}

static tls_ctx *ctx_load(const gwd_config *cfg, char *err, size_t errlen)
{
	tls_ctx *x = calloc(1, sizeof *x);
	size_t cap = 0;
	if (!x || !(x->certs = calloc(1 + cfg->ntls_certs, sizeof *x->certs))) {
		free(x);
		snprintf(err, errlen, "tls: out of memory");
		return NULL;
	}
	atomic_init(&x->refs, 1);
	x->ncerts = 1 + cfg->ntls_certs;
	x->min_version = cfg->tls_min_version;
	if (load_cert(x, &cap, 0, "tls", cfg->tls_cert, cfg->tls_key, err, errlen) != 0)
		goto fail;
	for (size_t i = 0; i < cfg->ntls_certs; i++) {
		char what[48];
		snprintf(what, sizeof what, "tls.certificates[%zu]", i);
		if (load_cert(x, &cap, i + 1, what, cfg->tls_certs[i].cert, cfg->tls_certs[i].key,
		              err, errlen) != 0)
			goto fail;
	}
	if (x->nnames)
		qsort(x->names, x->nnames, sizeof *x->names, name_cmp);
	if (cfg->tls_client_ca) {
		gnutls_datum_t d;
		if (read_pem("tls.client_ca", cfg->tls_client_ca, &d, err, errlen) != 0)
			goto fail;
		int n = -1;
		if (gnutls_x509_trust_list_init(&x->ca, 0) == 0)
			n = gnutls_x509_trust_list_add_trust_mem(x->ca, &d, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
		else
			x->ca = NULL;
		free(d.data);
		if (n <= 0) {
			snprintf(err, errlen, "tls.client_ca %s: %s", cfg->tls_client_ca,
			         n < 0 ? gnutls_strerror(n) : "no PEM certificate in it");
			goto fail;
		}
	}
	return x;
fail:
	ctx_free(x);
	return NULL;
}

/* the certificate for an SNI name: exact, then "*." + parent; 0 = default */
static size_t lookup(const tls_ctx *x, const char *sni, size_t len)
{
	char key[TLS_MAX_NAME + 3];
	while (len && sni[len - 1] == '.')
		len--;
	if (!x->nnames || len == 0 || len > TLS_MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++)
		key[i] = (char)((sni[i] >= 'A' && sni[i] <= 'Z') ? sni[i] + 32 : sni[i]);
	key[len] = '\0';
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1) {
			char *dot = memchr(key, '.', len);
			if (!dot || dot == key || !dot[1])
				return 0;
			size_t rest = len - (size_t)(dot - key);   /* ".x.y" */
			memmove(key + 1, dot, rest + 1);
			key[0] = '*';
		}
		/* lower bound: the first entry of this name is the earliest
		 * configured certificate that serves it */
		size_t lo = 0, hi = x->nnames;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (strcmp(x->names[mid].name, key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < x->nnames && !strcmp(x->names[lo].name, key))
			return x->names[lo].cert;
	}
	return 0;
}

/* ----------------------------------------------------- handshake hooks */
static gw_conn *session_conn(gnutls_session_t s)
{
	struct MHD_Connection *conn = gnutls_session_get_ptr(s);
	const union MHD_ConnectionInfo *ci =
		conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
	return ci ? ci->socket_context : NULL;
}

/* the client's chain against client_ca, while the handshake runs;
 * nonzero fails the handshake */
static int verify_client(gnutls_session_t s)
{
	gw_conn *c = session_conn(s);
	tls_ctx *x = c ? c->tls_ctx : NULL;
	unsigned n = 0;
	const gnutls_datum_t *der = gnutls_certificate_get_peers(s, &n);
	if (!x || !x->ca || !der || n == 0)
		return -1;
	if (n > TLS_MAX_CHAIN)
		n = TLS_MAX_CHAIN;
	gnutls_x509_crt_t crts[TLS_MAX_CHAIN];
	unsigned k = 0, status = 1;
	for (; k < n; k++) {
		if (gnutls_x509_crt_init(&crts[k]) < 0)
			break;
		if (gnutls_x509_crt_import(crts[k], &der[k], GNUTLS_X509_FMT_DER) < 0) {
			gnutls_x509_crt_deinit(crts[k]);
			break;
		}
	}
	if (k == n) {
		gnutls_typed_vdata_st vd = {
			.type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT,
		};
		if (gnutls_x509_trust_list_verify_crt2(x->ca, crts, n, &vd, 1, 0, &status, NULL) < 0)
			status = 1;
	}
	if (status && log_level() >= LOG_INFO) {
		gnutls_datum_t why = { 0 };
		char dnbuf[256] = "?";
		size_t dl = sizeof dnbuf;
		if (k > 0 && gnutls_x509_crt_get_dn(crts[0], dnbuf, &dl) < 0)
			strcpy(dnbuf, "?");
		if (k == n &&
		    gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0) == 0)
			while (why.size && (why.data[why.size - 1] == ' ' || !why.data[why.size - 1]))
				why.data[--why.size] = '\0';
		log_info("TLS client certificate refused (client %s, subject %s): %s",
		         c && c->ipstr[0] ? c->ipstr : "?", dnbuf,
		         why.data ? (const char *)why.data : "unreadable certificate");
		gnutls_free(why.data);
	}
	for (unsigned i = 0; i < k; i++)
		gnutls_x509_crt_deinit(crts[i]);
	return status ? -1 : 0;
}

static int cert_cb(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int nreqs,
                   const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                   gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	(void)req_ca_dn; (void)nreqs; (void)pk_algos; (void)pk_algos_length;
	gw_conn *c = session_conn(s);
	if (!c)
		return -1;
	tls_ctx *x = c->tls_ctx;
	if (!x) {
		/* first callback of this connection. No Nagle: the server's
		 * flight goes out as two writes (ServerHello, then the
		 * encrypted rest), and the second must not wait for an ACK */
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		/* the connection keeps the set it shook hands with: GnuTLS
		 * holds on to the chain and key we hand it */
		pthread_mutex_lock(&cur_mu);
		x = cur;
		if (x)
			atomic_fetch_add_explicit(&x->refs, 1, memory_order_relaxed);
		pthread_mutex_unlock(&cur_mu);
		if (!x)
			return -1;
		c->tls_ctx = x;
	}
	char name[TLS_MAX_NAME + 2];
	size_t nl = sizeof name;
	unsigned type;
	size_t i = 0;
	if (gnutls_server_name_get(s, name, &nl, &type, 0) == 0 && type == GNUTLS_NAME_DNS)
		i = lookup(x, name, nl);
	*pcert = x->certs[i].pc;
	*pcert_length = x->certs[i].npc;
	*pkey = x->certs[i].key;
	if (x->ca) {
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		gnutls_session_set_verify_function(s, verify_client);
	}
	return 0;
}

void tls_conn_closed(gw_conn *c)
{
	tls_ctx *x = c->tls_ctx;
	c->tls_ctx = NULL;
	ctx_release(x);
}

/* ------------------------------------------------------------ lifecycle */
static void set_current(tls_ctx *x)
{
	pthread_mutex_lock(&cur_mu);
	tls_ctx *old = cur;
	cur = x;
	pthread_mutex_unlock(&cur_mu);
	ctx_release(old);
}

int tls_init(const gwd_config *cfg, char *err, size_t errlen)
{
	if (!cfg->ntls_listen)
		return 0;
	if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES ||
	    MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK) != MHD_YES) {
		snprintf(err, errlen, "tls: this libmicrohttpd is built without HTTPS support");
		return -1;
	}
	tls_ctx *x = ctx_load(cfg, err, errlen);
	if (!x)
		return -1;
	/* TLS 1.0 and 1.1 are never offered; min_version 1.3 drops 1.2 */
	cur_min_version = cfg->tls_min_version;
	snprintf(prio, sizeof prio, "NORMAL:-VERS-ALL:+VERS-TLS1.3%s",
	         cfg->tls_min_version >= 13 ? "" : ":+VERS-TLS1.2");
	mhd_opts[0] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)cert_cb };
	mhd_opts[1] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0, prio };
	mhd_opts[2] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	set_current(x);
	log_info("TLS: %zu certificate%s, %zu name%s, minimum TLS 1.%d%s", x->ncerts,
	         x->ncerts == 1 ? "" : "s", x->nnames, x->nnames == 1 ? "" : "s",
	         cfg->tls_min_version % 10, x->ca ? ", client certificates required" : "");
	return 0;
}

int tls_check(const gwd_config *cfg, char *err, size_t errlen)
{
	if (!cfg->ntls_listen)
		return 0;
	tls_ctx *x = ctx_load(cfg, err, errlen);
	if (!x)
		return -1;
	ctx_free(x);
	return 0;
}

int tls_prepare(const gwd_config *cfg, tls_ctx **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!cfg->ntls_listen)
		return 0;
	*out = ctx_load(cfg, err, errlen);
	return *out ? 0 : -1;
}

void tls_commit(tls_ctx *x)
{
	if (!x)
		return;
	if (!mhd_opts[0].option) {
		/* no TLS listener runs (tls: was added by this reload) */
		log_warn("tls: new TLS listeners take effect at the next start");
		ctx_free(x);
		return;
	}
	if (x->min_version != cur_min_version)
		log_warn("tls.min_version takes effect at the next start (TLS 1.%d until then)",
		         cur_min_version % 10);
	set_current(x);
	log_info("TLS certificates reloaded: %zu certificate%s, %zu name%s", x->ncerts,
	         x->ncerts == 1 ? "" : "s", x->nnames, x->nnames == 1 ? "" : "s");
}

void tls_discard(tls_ctx *x)
{
	ctx_free(x);
}

const struct MHD_OptionItem *tls_mhd_options(void)
{
	return mhd_opts;
}

void tls_shutdown(void)
{
	set_current(NULL);
}

/* -------------------------------------------------------- per request */
int tls_client_subject(gw_req *r, const char **v, size_t *vlen)
{
	if (!r->tls)
		return 0;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return 0;
	gnutls_session_t s = ci->tls_session;
	unsigned n = 0;
	const gnutls_datum_t *der = gnutls_certificate_get_peers(s, &n);
	if (!der || !n)
		return 0;
	gnutls_x509_crt_t crt;
	gnutls_datum_t dn = { 0 };
	if (gnutls_x509_crt_init(&crt) < 0)
		return 0;
	int ok = gnutls_x509_crt_import(crt, &der[0], GNUTLS_X509_FMT_DER) == 0 &&
	         gnutls_x509_crt_get_dn3(crt, &dn, 0) == 0;
	gnutls_x509_crt_deinit(crt);
	if (!ok)
		return 0;
	char *out = srv_strndup(r, (const char *)dn.data, dn.size);
	size_t len = dn.size;
	gnutls_free(dn.data);
	if (!out)
		return 0;
	*v = out;
	*vlen = len;
	return 1;
}

/* -------------------------------------------------------- upstream side */
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;
static char *default_cainfo, *default_capath;
/* some handle got a CONNECT_TO list (tls_sni): plain attempts clear it */
static atomic_int connect_to_used;

/* curl's built-in trust store, to go back to after an upstream with its
 * own tls_ca (a NULL CAINFO would mean "no file", not "the default") */
static void load_defaults(void)
{
	CURL *e = curl_easy_init();
	char *p = NULL;
	if (!e)
		return;
	if (curl_easy_getinfo(e, CURLINFO_CAINFO, &p) == CURLE_OK && p)
		default_cainfo = strdup(p);
	p = NULL;
	if (curl_easy_getinfo(e, CURLINFO_CAPATH, &p) == CURLE_OK && p)
		default_capath = strdup(p);
	curl_easy_cleanup(e);
}

static const char *str_or_null(const gwb_table *t, uint32_t s)
{
	const char *v = gwb_str(t, s, NULL);
	return v && *v ? v : NULL;
}

const char *tls_upstream_prepare(CURL *e, gw_req *r, const gwb_upstream *uo,
                                 const ups_server *s)
{
	pthread_once(&defaults_once, load_defaults);
	const gwb_table *t = r->t;
	int verify = !(uo->flags & GWB_UPS_TLS_NOVERIFY);
	const char *ca = str_or_null(t, uo->tls_ca);
	const char *sni = str_or_null(t, uo->tls_sni);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
	/* tls_ca replaces the system store (as nginx's
	 * proxy_ssl_trusted_certificate), it does not add to it */
	curl_easy_setopt(e, CURLOPT_CAINFO, ca ? ca : default_cainfo);
	curl_easy_setopt(e, CURLOPT_CAPATH, ca ? NULL : default_capath);
	curl_easy_setopt(e, CURLOPT_SSLCERT, str_or_null(t, uo->tls_cert));
	curl_easy_setopt(e, CURLOPT_SSLKEY, str_or_null(t, uo->tls_key));
	if (!sni) {
		tls_upstream_plain(e);
		return s->host;
	}
	/* "sni:port:host:port": the URL names sni (SNI, certificate check),
	 * the connection goes to the server. The list lives in r's arena,
	 * which outlasts the transfer; tls_upstream_plain and the next call
	 * here replace it before the handle is used again. */
	int v6 = strchr(s->host, ':') != NULL;
	size_t need = strlen(sni) + strlen(s->host) + 32;
	char *spec = srv_alloc(r, need);
	struct curl_slist *l = srv_alloc(r, sizeof *l);
	if (!spec || !l)
		return NULL;
	snprintf(spec, need, "%s:%d:%s%s%s:%d", sni, s->port, v6 ? "[" : "", s->host,
	         v6 ? "]" : "", s->port);
	l->data = spec;
	l->next = NULL;
	atomic_store_explicit(&connect_to_used, 1, memory_order_relaxed);
	curl_easy_setopt(e, CURLOPT_CONNECT_TO, l);
	return sni;
}

void tls_upstream_plain(CURL *e)
{
	/* a pooled handle may still point at an older request's list (freed
	 * with that request's arena); nothing to clear while no upstream
	 * uses tls_sni, so plain-only gateways pay no setopt */
	if (atomic_load_explicit(&connect_to_used, memory_order_relaxed))
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, NULL);
}
