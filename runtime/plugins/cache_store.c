/*
 * cache_store.c — the response cache's store and HTTP caching rules; see
 * cache_store.h for the model. Nothing here knows about gw_req: cache.c
 * is the plugin, this is the data structure.
 */
#include <config.h>   /* <>: autoconf's; "config.h" in runtime/ is gwd's */

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache_store.h"

#define ENTRY_MAX_ABS (1024u * 1024u)

enum { K_RESP, K_VARY, K_PASS };
enum { W_IDLE, W_WAITING, W_WOKEN };

/* hash chain link shared by objects and fills */
typedef struct cs_link {
	struct cs_link *hnext;
	uint64_t hash;
	const char *key;
	size_t klen;
} cs_link;

typedef struct cs_tab { cs_link **b; size_t nb, n; } cs_tab;

typedef struct cs_node {
	cs_entry e;                     /* first: a cs_entry * is its node */
	cs_link h;
	struct cs_node *lprev, *lnext;  /* shard LRU, newest first */
	uint64_t stamp;
	atomic_uint refs;               /* 1 while linked + 1 per hit in use */
	int kind;
	size_t bytes;
	const char *vary; size_t vary_len;  /* K_VARY: names, NUL-terminated each */
	char *body;                     /* owned */
} cs_node;

struct cs_fill {
	cs_link h;
	unsigned shard;
	size_t plen;                    /* the primary key: key[0..plen) */
	cs_waiter *w, **wtail;
	char key[];
};

typedef struct cs_shard {
	pthread_mutex_t mu;
	cs_tab nodes, fills;
	cs_node lru;                    /* sentinel: lnext newest, lprev oldest */
	size_t count;
	char pad[64];                   /* keep shards' locks on their own lines */
} cs_shard;

struct cs_store {
	cs_shard *sh;
	unsigned nsh;
	size_t cap, entry_max;
	atomic_size_t bytes;
	atomic_uint_fast64_t clock;     /* LRU stamps */
	atomic_uint_fast64_t evictions;
	pthread_mutex_t evict_mu;       /* one evictor at a time */
};

/* ---------------------------------------------------------------- hash */
static uint64_t hash_key(const char *k, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 0x100000001b3ull;
	}
	return h ^ (h >> 29);
}

static cs_link **tab_slot(cs_tab *t, uint64_t h, const char *k, size_t n)
{
	cs_link **p = &t->b[h & (t->nb - 1)];
	for (; *p; p = &(*p)->hnext)
		if ((*p)->hash == h && (*p)->klen == n && !memcmp((*p)->key, k, n))
			break;
	return p;
}

static cs_link *tab_find(cs_tab *t, uint64_t h, const char *k, size_t n)
{
	return *tab_slot(t, h, k, n);
}

/* grows the table when it is full; a failed grow only makes chains longer */
static void tab_add(cs_tab *t, cs_link *l)
{
	if (t->n >= t->nb) {
		size_t nb = t->nb * 2;
		cs_link **b = calloc(nb, sizeof *b);
		if (b) {
			for (size_t i = 0; i < t->nb; i++)
				for (cs_link *x = t->b[i], *nx; x; x = nx) {
					nx = x->hnext;
					x->hnext = b[x->hash & (nb - 1)];
					b[x->hash & (nb - 1)] = x;
				}
			free(t->b);
			t->b = b;
			t->nb = nb;
		}
	}
	l->hnext = t->b[l->hash & (t->nb - 1)];
	t->b[l->hash & (t->nb - 1)] = l;
	t->n++;
}

static void tab_del(cs_tab *t, cs_link *l)
{
	for (cs_link **p = &t->b[l->hash & (t->nb - 1)]; *p; p = &(*p)->hnext)
		if (*p == l) {
			*p = l->hnext;
			t->n--;
			return;
		}
}

/* --------------------------------------------------------------- store */
cs_store *cs_new(size_t cap, unsigned nshards)
{
	unsigned n = 1;
	while (n < nshards && n < 1024)
		n <<= 1;
	cs_store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->sh = calloc(n, sizeof *s->sh);
	if (!s->sh) {
		free(s);
		return NULL;
	}
	s->nsh = n;
	s->cap = cap;
	s->entry_max = cap / 8 < ENTRY_MAX_ABS ? cap / 8 : ENTRY_MAX_ABS;
	atomic_init(&s->bytes, 0);
	atomic_init(&s->clock, 0);
	atomic_init(&s->evictions, 0);
	pthread_mutex_init(&s->evict_mu, NULL);
	for (unsigned i = 0; i < n; i++) {
		cs_shard *sh = &s->sh[i];
		pthread_mutex_init(&sh->mu, NULL);
		sh->nodes.nb = sh->fills.nb = 16;
		sh->nodes.b = calloc(16, sizeof(cs_link *));
		sh->fills.b = calloc(16, sizeof(cs_link *));
		sh->lru.lnext = sh->lru.lprev = &sh->lru;
		if (!sh->nodes.b || !sh->fills.b) {
			s->nsh = i + 1;
			cs_free(s);
			return NULL;
		}
	}
	return s;
}

static void node_free(cs_node *n)
{
	free(n->body);
	free(n);
}

void cs_release(cs_entry *e)
{
	cs_node *n = (cs_node *)e;
	if (n && atomic_fetch_sub(&n->refs, 1) == 1)
		node_free(n);
}

void cs_free(cs_store *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->nsh; i++) {
		cs_shard *sh = &s->sh[i];
		for (cs_node *n = sh->lru.lnext, *nx; n && n != &sh->lru; n = nx) {
			nx = n->lnext;
			cs_release(&n->e);
		}
		for (size_t b = 0; sh->fills.b && b < sh->fills.nb; b++)
			for (cs_link *l = sh->fills.b[b], *nx; l; l = nx) {
				nx = l->hnext;
				free(l);     /* the link is the fill's first member */
			}
		free(sh->nodes.b);
		free(sh->fills.b);
		pthread_mutex_destroy(&sh->mu);
	}
	pthread_mutex_destroy(&s->evict_mu);
	free(s->sh);
	free(s);
}

size_t cs_cap(const cs_store *s) { return s->cap; }
size_t cs_entry_max(const cs_store *s) { return s->entry_max; }
size_t cs_bytes(cs_store *s) { return atomic_load(&s->bytes); }
uint64_t cs_evictions(cs_store *s) { return atomic_load(&s->evictions); }

size_t cs_count(cs_store *s)
{
	size_t c = 0;
	for (unsigned i = 0; i < s->nsh; i++) {
		pthread_mutex_lock(&s->sh[i].mu);
		c += s->sh[i].count;
		pthread_mutex_unlock(&s->sh[i].mu);
	}
	return c;
}

static cs_shard *shard_of(cs_store *s, uint64_t h, unsigned *idx)
{
	unsigned i = (unsigned)(h >> 40) & (s->nsh - 1);
	if (idx)
		*idx = i;
	return &s->sh[i];
}

/* with sh locked: make n the most recently used */
static void touch(cs_store *s, cs_shard *sh, cs_node *n)
{
	n->stamp = atomic_fetch_add(&s->clock, 1) + 1;
	if (sh->lru.lnext == n)
		return;
	n->lprev->lnext = n->lnext;
	n->lnext->lprev = n->lprev;
	n->lnext = sh->lru.lnext;
	n->lprev = &sh->lru;
	sh->lru.lnext->lprev = n;
	sh->lru.lnext = n;
}

/* with sh locked: take n out (its table reference goes) */
static void unlink_node(cs_store *s, cs_shard *sh, cs_node *n)
{
	tab_del(&sh->nodes, &n->h);
	n->lprev->lnext = n->lnext;
	n->lnext->lprev = n->lprev;
	sh->count--;
	atomic_fetch_sub(&s->bytes, n->bytes);
	cs_release(&n->e);
}

/* evict least recently used objects until need more bytes fit */
static void make_room(cs_store *s, size_t need)
{
	if (atomic_load(&s->bytes) + need <= s->cap)
		return;
	pthread_mutex_lock(&s->evict_mu);
	while (atomic_load(&s->bytes) + need > s->cap) {
		unsigned best = s->nsh;
		uint64_t bstamp = UINT64_MAX;
		for (unsigned i = 0; i < s->nsh; i++) {
			cs_shard *sh = &s->sh[i];
			pthread_mutex_lock(&sh->mu);
			if (sh->lru.lprev != &sh->lru && sh->lru.lprev->stamp < bstamp) {
				bstamp = sh->lru.lprev->stamp;
				best = i;
			}
			pthread_mutex_unlock(&sh->mu);
		}
		if (best == s->nsh)
			break;               /* nothing left to evict */
		cs_shard *sh = &s->sh[best];
		pthread_mutex_lock(&sh->mu);
		if (sh->lru.lprev != &sh->lru) {
			unlink_node(s, sh, sh->lru.lprev);
			atomic_fetch_add(&s->evictions, 1);
		}
		pthread_mutex_unlock(&sh->mu);
	}
	pthread_mutex_unlock(&s->evict_mu);
}

/* link n, replacing any object of its key; consumes n when it cannot fit */
static void insert(cs_store *s, cs_node *n)
{
	if (n->bytes > s->cap) {
		node_free(n);
		return;
	}
	make_room(s, n->bytes);
	cs_shard *sh = shard_of(s, n->h.hash, NULL);
	pthread_mutex_lock(&sh->mu);
	cs_link *old = tab_find(&sh->nodes, n->h.hash, n->h.key, n->h.klen);
	if (old)
		unlink_node(s, sh, (cs_node *)((char *)old - offsetof(cs_node, h)));
	tab_add(&sh->nodes, &n->h);
	n->lnext = sh->lru.lnext;
	n->lprev = &sh->lru;
	sh->lru.lnext->lprev = n;
	sh->lru.lnext = n;
	n->stamp = atomic_fetch_add(&s->clock, 1) + 1;
	sh->count++;
	atomic_fetch_add(&s->bytes, n->bytes);
	pthread_mutex_unlock(&sh->mu);
}

/* a node with room for the key, nh headers and extra bytes of strings */
static cs_node *node_new(int kind, const char *key, size_t klen, size_t nh, size_t extra)
{
	size_t sz = sizeof(cs_node) + nh * sizeof(cs_hdr) + klen + 1 + extra;
	cs_node *n = calloc(1, sz);
	if (!n)
		return NULL;
	n->kind = kind;
	char *p = (char *)(n + 1) + nh * sizeof(cs_hdr);
	memcpy(p, key, klen);
	p[klen] = '\0';
	n->h.key = p;
	n->h.klen = klen;
	n->h.hash = hash_key(key, klen);
	n->bytes = sz;
	atomic_init(&n->refs, 1);
	return n;
}

/* ------------------------------------------------------------- variants */
static void trim(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

/* key + for each vary name: \x01 value, or \x02 when the request has no
 * such header. malloc'ed (NULL: out of memory) */
static char *variant_key(const char *key, size_t klen, const char *vary, size_t vlen,
                         cs_hdr_fn hdr, void *hctx, size_t *outlen)
{
	size_t need = klen;
	for (size_t i = 0; i < vlen; i += strlen(vary + i) + 1) {
		const char *v;
		size_t n;
		need += 1;
		if (hdr && hdr(hctx, vary + i, &v, &n)) {
			trim(&v, &n);
			need += n;
		}
	}
	char *out = malloc(need + 1);
	if (!out)
		return NULL;
	memcpy(out, key, klen);
	size_t k = klen;
	for (size_t i = 0; i < vlen; i += strlen(vary + i) + 1) {
		const char *v;
		size_t n;
		if (hdr && hdr(hctx, vary + i, &v, &n)) {
			trim(&v, &n);
			out[k++] = '\x01';
			memcpy(out + k, v, n);
			k += n;
		} else {
			out[k++] = '\x02';
		}
	}
	out[k] = '\0';
	*outlen = k;
	return out;
}

/* -------------------------------------------------------------- lookup */
int cs_lookup(cs_store *s, const char *key, size_t klen, cs_hdr_fn hdr, void *hctx,
              uint64_t now, int may_fill, cs_waiter *(*mkwaiter)(void *), void *mkctx,
              cs_entry **hit, cs_fill **fill)
{
	const char *k = key;
	size_t kl = klen;
	char *vk = NULL;
	int rc = CS_MISS;
	*hit = NULL;
	*fill = NULL;
	for (int level = 0; level < 2; level++) {
		uint64_t h = hash_key(k, kl);
		unsigned si;
		cs_shard *sh = shard_of(s, h, &si);
		pthread_mutex_lock(&sh->mu);
		cs_link *l = tab_find(&sh->nodes, h, k, kl);
		cs_node *n = l ? (cs_node *)((char *)l - offsetof(cs_node, h)) : NULL;
		if (n && n->e.expires_ms <= now) {
			unlink_node(s, sh, n);
			n = NULL;
		}
		if (n && n->kind == K_VARY && level == 0) {
			touch(s, sh, n);
			size_t vl;
			vk = variant_key(key, klen, n->vary, n->vary_len, hdr, hctx, &vl);
			pthread_mutex_unlock(&sh->mu);
			if (!vk)
				return CS_PASS;      /* out of memory: just go upstream */
			k = vk;
			kl = vl;
			continue;
		}
		if (n && n->kind == K_RESP) {
			touch(s, sh, n);
			atomic_fetch_add(&n->refs, 1);
			*hit = &n->e;
			rc = CS_HIT;
		} else if (n && n->kind == K_PASS) {
			rc = CS_PASS;
		} else {
			/* nothing stored (a vary object at a variant key cannot be:
			 * variant keys are longer than any key they come from) */
			cs_link *fl = tab_find(&sh->fills, h, k, kl);
			cs_fill *f = (cs_fill *)fl;
			cs_waiter *w;
			if (f && mkwaiter && (w = mkwaiter(mkctx))) {
				w->next = NULL;
				w->state = W_WAITING;
				w->shard = si;
				w->fill = f;
				w->pass = 0;
				*f->wtail = w;
				f->wtail = &w->next;
				rc = CS_WAIT;
			} else if (!f && may_fill) {
				f = malloc(sizeof *f + kl + 1);
				if (f) {
					memcpy(f->key, k, kl);
					f->key[kl] = '\0';
					f->h.key = f->key;
					f->h.klen = kl;
					f->h.hash = h;
					f->shard = si;
					f->plen = klen;
					f->w = NULL;
					f->wtail = &f->w;
					tab_add(&sh->fills, &f->h);
					*fill = f;
				}
			}
		}
		pthread_mutex_unlock(&sh->mu);
		break;
	}
	free(vk);
	return rc;
}

const char *cs_fill_key(const cs_fill *f, size_t *len)
{
	if (len)
		*len = f->h.klen;
	return f->key;
}

int cs_wait_cancel(cs_store *s, cs_waiter *w)
{
	cs_shard *sh = &s->sh[w->shard];
	int removed = 0;
	pthread_mutex_lock(&sh->mu);
	if (w->state == W_WAITING) {
		cs_fill *f = w->fill;
		for (cs_waiter **p = &f->w; *p; p = &(*p)->next)
			if (*p == w) {
				*p = w->next;
				if (f->wtail == &w->next)
					f->wtail = p;
				break;
			}
		w->state = W_IDLE;
		removed = 1;
	}
	pthread_mutex_unlock(&sh->mu);
	return removed;
}

static cs_node *resp_node(const char *key, size_t klen, const cs_put *put, uint64_t now)
{
	size_t extra = 0;
	for (size_t i = 0; i < put->nhdr; i++)
		extra += put->hdr[i].nlen + 1 + put->hdr[i].vlen + 1;
	cs_node *n = node_new(K_RESP, key, klen, put->nhdr, extra);
	if (!n)
		return NULL;
	cs_hdr *hv = (cs_hdr *)(n + 1);
	char *p = (char *)n->h.key + klen + 1;
	for (size_t i = 0; i < put->nhdr; i++) {
		const cs_hdr *h = &put->hdr[i];
		memcpy(p, h->name, h->nlen);
		p[h->nlen] = '\0';
		hv[i].name = p;
		hv[i].nlen = h->nlen;
		p += h->nlen + 1;
		memcpy(p, h->val, h->vlen);
		p[h->vlen] = '\0';
		hv[i].val = p;
		hv[i].vlen = h->vlen;
		p += h->vlen + 1;
	}
	n->e.hdr = hv;
	n->e.nhdr = put->nhdr;
	n->e.status = put->status;
	n->e.age0_s = put->age0_s;
	n->e.stored_ms = now;
	n->e.expires_ms = put->expires_ms;
	n->body = put->body;
	n->e.body = put->body ? put->body : "";
	n->e.body_len = put->body_len;
	n->bytes += put->body_len;
	return n;
}

void cs_fill_done(cs_store *s, cs_fill *f, cs_put *put, cs_hdr_fn hdr, void *hctx,
                  uint64_t now, uint64_t pass_until)
{
	int stored = 0;
	if (put && put->body_len <= s->entry_max) {
		const char *key = f->key;
		size_t klen = f->plen;
		char *vk = NULL;
		if (put->vary_len) {
			/* the primary key says "vary on these", the response goes
			 * under this request's variant key */
			cs_node *m = node_new(K_VARY, key, klen, 0, put->vary_len);
			size_t vl = 0;
			vk = m ? variant_key(key, klen, put->vary, put->vary_len, hdr, hctx, &vl) : NULL;
			if (vk) {
				char *p = (char *)m->h.key + klen + 1;
				memcpy(p, put->vary, put->vary_len);
				m->vary = p;
				m->vary_len = put->vary_len;
				m->e.expires_ms = put->expires_ms;
				m->e.stored_ms = now;
				insert(s, m);
				key = vk;
				klen = vl;
			} else {
				free(m);
				key = NULL;
			}
		}
		cs_node *n = key ? resp_node(key, klen, put, now) : NULL;
		if (n) {
			put->body = NULL;        /* the node has it */
			stored = n->bytes <= s->cap;
			insert(s, n);
		}
		free(vk);
	} else if (pass_until > now) {
		cs_node *n = node_new(K_PASS, f->key, f->h.klen, 0, 0);
		if (n) {
			n->e.expires_ms = pass_until;
			n->e.stored_ms = now;
			insert(s, n);
		}
	}
	if (put) {
		free(put->body);
		put->body = NULL;
	}
	/* the object is visible before the fill goes: a waiter woken now, or a
	 * request arriving now, finds it */
	cs_shard *sh = &s->sh[f->shard];
	pthread_mutex_lock(&sh->mu);
	tab_del(&sh->fills, &f->h);
	cs_waiter *w = f->w;
	for (cs_waiter *x = w; x; x = x->next) {
		x->state = W_WOKEN;
		x->pass = !stored;
	}
	pthread_mutex_unlock(&sh->mu);
	free(f);
	while (w) {
		cs_waiter *nx = w->next;   /* wake may hand w to another thread */
		w->wake(w);
		w = nx;
	}
}

/* ------------------------------------------------------ caching rules */
int cs_status_cacheable(int status)
{
	return status == 200 || status == 203 || status == 301 || status == 404 || status == 410;
}

void cs_cc_init(cs_cc *cc)
{
	cc->flags = 0;
	cc->max_age = cc->s_maxage = -1;
}

static int64_t cc_seconds(const char *v, size_t n)
{
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	if (n == 0)
		return 0;                /* malformed: stale at once */
	int64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)v[i]))
			return 0;
		if (x < (int64_t)1 << 40)
			x = x * 10 + (v[i] - '0');
	}
	return x;
}

static void cc_age(int64_t *slot, int64_t v)
{
	if (*slot < 0 || v < *slot)
		*slot = v;
}

void cs_cc_parse(cs_cc *cc, const char *v, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
			i++;
		size_t ns = i;
		while (i < n && v[i] != ',' && v[i] != '=' && v[i] != ' ' && v[i] != '\t')
			i++;
		size_t nl = i - ns;
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		const char *arg = NULL;
		size_t al = 0;
		if (i < n && v[i] == '=') {
			i++;
			while (i < n && (v[i] == ' ' || v[i] == '\t'))
				i++;
			arg = v + i;
			if (i < n && v[i] == '"') {      /* quoted: up to the closing quote */
				i++;
				while (i < n && v[i] != '"')
					i++;
				if (i < n)
					i++;
			} else {
				while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
					i++;
			}
			al = (size_t)(v + i - arg);
		}
		while (i < n && v[i] != ',')
			i++;
		const char *d = v + ns;
#define IS(s) (nl == sizeof(s) - 1 && !strncasecmp(d, s, nl))
		if (IS("no-store"))
			cc->flags |= CS_CC_NO_STORE;
		else if (IS("private"))
			cc->flags |= CS_CC_PRIVATE;
		else if (IS("no-cache"))
			cc->flags |= CS_CC_NO_CACHE;
		else if (IS("public"))
			cc->flags |= CS_CC_PUBLIC;
		else if (IS("must-revalidate") || IS("proxy-revalidate"))
			cc->flags |= CS_CC_MUST_REVALIDATE;
		else if (IS("max-age"))
			cc_age(&cc->max_age, arg ? cc_seconds(arg, al) : 0);
		else if (IS("s-maxage"))
			cc_age(&cc->s_maxage, arg ? cc_seconds(arg, al) : 0);
#undef IS
	}
}

int cs_http_date(const char *v, size_t n, int64_t *t)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT",   /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT",   /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",        /* asctime */
	};
	char buf[64];
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
		struct tm tm;
		memset(&tm, 0, sizeof tm);
		const char *end = strptime(buf, fmts[i], &tm);
		if (end && *end == '\0') {
			*t = (int64_t)timegm(&tm);
			return 0;
		}
	}
	return -1;
}

int64_t cs_fresh_ms(const cs_policy *p, const char **why, int *intrinsic)
{
	*intrinsic = 1;
	const char *w = NULL;
	if (!cs_status_cacheable(p->status))
		w = "status";
	else if (p->cc.flags & CS_CC_NO_STORE)
		w = "no-store";
	else if (p->cc.flags & CS_CC_PRIVATE)
		w = "private";
	else if (p->cc.flags & CS_CC_NO_CACHE)
		w = "no-cache";
	else if (p->set_cookie)
		w = "Set-Cookie";
	else if (p->vary_star)
		w = "Vary: *";
	if (w) {
		*why = w;
		return 0;
	}
	/* RFC 9111 3.5: a shared cache stores an answer to an authenticated
	 * request only when the response says it may */
	if (p->authorization && p->cc.s_maxage < 0 &&
	    !(p->cc.flags & (CS_CC_PUBLIC | CS_CC_MUST_REVALIDATE))) {
		*why = "Authorization";
		*intrinsic = 0;
		return 0;
	}
	int64_t life;
	if (p->cc.s_maxage >= 0)
		life = p->cc.s_maxage * 1000;
	else if (p->cc.max_age >= 0)
		life = p->cc.max_age * 1000;
	else if (p->has_expires)
		life = (p->expires_s - (p->has_date ? p->date_s : p->now_s)) * 1000;
	else
		life = p->default_ttl_ms;
	life -= p->age_s * 1000;
	if (life <= 0) {
		*why = "stale";
		return 0;
	}
	*why = "";
	return life;
}
