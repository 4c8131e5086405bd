/*
 * admin_state.c — the admin API's upstream overrides: kept in memory,
 * persisted to state_dir, applied to the upstream registry.
 *
 * The state is a map upstream name -> server list (an "override"). It is
 * the only truth about overrides: the registry (upstream.c) carries them
 * out, and this file makes the registry agree with the state
 *   - on every change, for the upstream changed;
 *   - on every table load (start-up and each reload), for every upstream of
 *     the new table, from the reload sync hook, which runs after ups_sync
 *     and before the swap, so the first request on a new table already
 *     sees the overrides. An upstream the table names and the state does
 *     not has its override dropped (a DELETE made while it was out of the
 *     table), one the state names gets it set.
 *
 * Order of a change (all under `mu`, so changes are serialised and views
 * are consistent):
 *   1. compute the new state; validate it (addresses, names, limits);
 *   2. write it to STATE_DIR/upstreams.json.tmp, fsync, close, rename over
 *      upstreams.json, fsync the directory. Any failure: remove the temp
 *      file, answer 500, nothing changed (the old file is intact, since
 *      only a rename replaces it);
 *   3. apply it to the registry (ups_set_servers_ex, which swaps one
 *      snapshot: new requests use the new list at once, in-flight ones
 *      finish on the servers they had). This only fails when out of
 *      memory; then the old state is written back and 500 answered;
 *   4. only now the in-memory state changes and 200 is answered.
 *
 * Decisions
 *   - Upstreams not in the table: a POST/PUT for a name the current table
 *     does not have is accepted (as dyups creates upstreams) if the name is
 *     a valid gwr identifier. It is kept and persisted but inactive: the
 *     compiled table cannot route to an upstream it does not declare. It
 *     becomes active when a table that declares it is loaded (best declared
 *     `upstream NAME dynamic;`). Likewise an override of an upstream that
 *     leaves the table stays on disk, inactive, and applies again when it
 *     comes back. GET shows inactive ones ("active": false in JSON), DELETE
 *     removes them. gwd logs a warning for each.
 *   - An override always has at least one server; DELETE of the whole
 *     upstream drops it (back to the table's servers; a `dynamic` upstream
 *     becomes empty). Removing the last server of a `dynamic` upstream
 *     drops the override; of another upstream it is refused (409), because
 *     dropping would silently bring the table's servers back.
 *   - Per-server changes (PUT/DELETE a server, drain) on an upstream
 *     without an override start from its current servers (the table's)
 *     and create an override: from then on, table changes to that
 *     upstream's servers are masked until the override is dropped.
 *   - Without state_dir nothing is persisted (changes live until restart);
 *     /status says so.
 *   - An unreadable or malformed state file stops gwd at start-up (an
 *     operator's overrides silently lost would route traffic to servers
 *     they removed); the message names the file and the position.
 *   - state_dir is read at start only; a reload does not move it.
 */
#include <config.h>   /* <>: autoconf's; "config.h" here is gwd's */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "admin_int.h"
#include "log.h"

#define STATE_FILE    "upstreams.json"
#define STATE_VERSION 1
#define STATE_MAX     (64u << 20)   /* a larger state file is not ours */

typedef struct entry {
	char *name;
	adm_list list;
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *ents; static size_t nents;       /* sorted by name */
static char *sdir, *spath, *stmp;              /* NULL: not persisted */
static ups_registry *registry;

/* ------------------------------------------------------------- lists */

void adm_list_free(adm_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].addr);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int adm_list_push(adm_list *l, const adm_server *s)
{
	adm_server *v = realloc(l->v, (l->n + 1) * sizeof *v);
	if (!v)
		return -1;
	l->v = v;
	v[l->n] = *s;
	if (!(v[l->n].addr = strdup(s->addr)))
		return -1;
	l->n++;
	return 0;
}

int adm_list_copy(adm_list *out, const adm_list *in)
{
	adm_list l = { NULL, 0 };
	for (size_t i = 0; i < in->n; i++)
		if (adm_list_push(&l, &in->v[i]) < 0) {
			adm_list_free(&l);
			*out = l;
			return -1;
		}
	*out = l;
	return 0;
}

ups_server_spec *adm_list_specs(const adm_list *l)
{
	ups_server_spec *v = calloc(l->n ? l->n : 1, sizeof *v);
	if (!v)
		return NULL;
	for (size_t i = 0; i < l->n; i++) {
		v[i].addr = l->v[i].addr;
		v[i].weight = l->v[i].weight;
		v[i].max_fails = l->v[i].max_fails;
		v[i].fail_timeout_ms = l->v[i].fail_timeout_ms;
		v[i].backup = l->v[i].backup;
		v[i].drain = l->v[i].drain;
	}
	return v;
}

int adm_check_addr(const char *addr, char *err, size_t errlen)
{
	addr_parsed ap;
	return addr_parse(addr, strlen(addr), &ap, err, errlen);
}

int adm_valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '-')))
			return 0;
	}
	return 1;
}

/* ----------------------------------------------------------- entries */

static entry *find_entry(const char *name)
{
	size_t lo = 0, hi = nents;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(ents[mid].name, name);
		if (c == 0)
			return &ents[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void entries_free(entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		adm_list_free(&v[i].list);
	}
	free(v);
}

/* ------------------------------------------------------ the state file */

static char *state_text(const entry *v, size_t n)
{
	json_t *ups = json_object();
	json_t *root = json_pack("{s:i, s:o}", "version", STATE_VERSION, "upstreams", ups);
	if (!root)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *arr = json_array();
		for (size_t k = 0; arr && k < v[i].list.n; k++)
			if (json_array_append_new(arr, adm_server_json(&v[i].list.v[k])) < 0) {
				json_decref(arr);
				arr = NULL;
			}
		if (!arr || json_object_set_new(ups, v[i].name, json_pack("{s:o}", "servers", arr)) < 0) {
			json_decref(root);
			return NULL;
		}
	}
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	return s;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Write the state v[0..n) to the state file atomically. 0 ok (or nothing
 * to do without state_dir); -1 with err and the old file intact; -2 when
 * the file was renamed into place but the directory could not be synced
 * (the caller rolls back). */
static int write_state(const entry *v, size_t n, char *err, size_t errlen)
{
	if (!sdir)
		return 0;
	char *text = state_text(v, n);
	if (!text) {
		snprintf(err, errlen, "state not saved: out of memory");
		return -1;
	}
	size_t len = strlen(text);
	text[len] = '\0';
	int fd = open(stmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "state not saved: %s: %s", stmp, strerror(errno));
		free(text);
		return -1;
	}
	const char *step = "write";
	if (write_all(fd, text, len) < 0 || write_all(fd, "\n", 1) < 0 ||
	    (step = "fsync", fsync(fd) < 0)) {
		snprintf(err, errlen, "state not saved: %s %s: %s", step, stmp, strerror(errno));
		close(fd);
		unlink(stmp);
		free(text);
		return -1;
	}
	free(text);
	if (close(fd) < 0) {
		snprintf(err, errlen, "state not saved: close %s: %s", stmp, strerror(errno));
		unlink(stmp);
		return -1;
	}
	if (rename(stmp, spath) < 0) {
		snprintf(err, errlen, "state not saved: rename to %s: %s", spath, strerror(errno));
		unlink(stmp);
		return -1;
	}
	int dfd = open(sdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0) {
		snprintf(err, errlen, "state not saved: fsync %s: %s", sdir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -2;
	}
	close(dfd);
	return 0;
}

static int load_state(char *err, size_t errlen)
{
	int fd = open(spath, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "state file %s: %s", spath, strerror(errno));
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > STATE_MAX) {
		snprintf(err, errlen, "state file %s: not a regular file of at most %u bytes",
		         spath, STATE_MAX);
		close(fd);
		return -1;
	}
	json_error_t je;
	json_t *root = json_loadfd(fd, JSON_REJECT_DUPLICATES, &je);
	close(fd);
	if (!root) {
		char m[300];
		adm_json_error(&je, m, sizeof m);
		snprintf(err, errlen, "state file %s: %s", spath, m);
		return -1;
	}
	json_t *ver = json_object_get(root, "version");
	json_t *ups = json_object_get(root, "upstreams");
	char m[300] = "";
	if (!json_is_object(root) || !json_is_integer(ver) ||
	    json_integer_value(ver) != STATE_VERSION || !json_is_object(ups)) {
		snprintf(m, sizeof m, "expected {\"version\": %d, \"upstreams\": {...}}", STATE_VERSION);
	} else {
		const char *name;
		json_t *u;
		json_object_foreach(ups, name, u) {
			entry e = { NULL, { NULL, 0 } };
			if (!adm_valid_name(name)) {
				snprintf(m, sizeof m, "'%s' is not a valid upstream name", name);
				break;
			}
			json_t *arr = json_object_get(u, "servers");
			char le[240];
			if (!json_is_object(u) || json_object_size(u) != 1 || !arr) {
				snprintf(m, sizeof m, "%s: expected {\"servers\": [...]}", name);
				break;
			}
			if (adm_list_from_json(arr, &e.list, le, sizeof le) < 0) {
				snprintf(m, sizeof m, "%s: %s", name, le);
				break;
			}
			if (e.list.n == 0) {
				snprintf(m, sizeof m, "%s: no servers", name);
				break;
			}
			entry *nv = realloc(ents, (nents + 1) * sizeof *nv);
			if (!nv || !(e.name = strdup(name))) {
				if (nv)
					ents = nv;
				adm_list_free(&e.list);
				snprintf(m, sizeof m, "out of memory");
				break;
			}
			ents = nv;
			ents[nents++] = e;
		}
	}
	json_decref(root);
	if (m[0]) {
		snprintf(err, errlen, "state file %s: %s", spath, m);
		entries_free(ents, nents);
		ents = NULL;
		nents = 0;
		return -1;
	}
	/* jansson keeps insertion order; the file is written sorted, but a
	 * hand-edited one need not be */
	for (size_t i = 1; i < nents; i++)
		for (size_t j = i; j > 0 && strcmp(ents[j - 1].name, ents[j].name) > 0; j--) {
			entry t = ents[j];
			ents[j] = ents[j - 1];
			ents[j - 1] = t;
		}
	return 0;
}

int adm_state_init(const char *state_dir, ups_registry *reg, char *err, size_t errlen)
{
	registry = reg;
	if (!state_dir)
		return 0;
	size_t n = strlen(state_dir) + sizeof "/" STATE_FILE ".tmp";
	sdir = strdup(state_dir);
	spath = malloc(n);
	stmp = malloc(n);
	if (!sdir || !spath || !stmp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(spath, n, "%s/%s", state_dir, STATE_FILE);
	snprintf(stmp, n, "%s/%s.tmp", state_dir, STATE_FILE);
	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		log_warn("state_dir %s: %s: admin API changes cannot be saved", state_dir,
		         strerror(errno));
	if (load_state(err, errlen) < 0)
		return -1;
	/* a temp file left by a crash between write and rename is garbage
	 * (the rename is the commit point) */
	if (unlink(stmp) == 0)
		log_info("state_dir: removed %s left by an interrupted change", stmp);
	log_info("admin state: %zu upstream override(s) in %s", nents, spath);
	return 0;
}

void adm_state_free(void)
{
	pthread_mutex_lock(&mu);
	entries_free(ents, nents);
	ents = NULL;
	nents = 0;
	free(sdir);
	free(spath);
	free(stmp);
	sdir = spath = stmp = NULL;
	pthread_mutex_unlock(&mu);
}

/* ----------------------------------------------------------- applying */

static int apply(ups_upstream *u, const adm_list *l, char *err, size_t errlen)
{
	if (!l)
		return ups_set_servers_ex(u, NULL, 0, err, errlen);
	ups_server_spec *sp = adm_list_specs(l);
	if (!sp) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = ups_set_servers_ex(u, sp, l->n, err, errlen);
	free(sp);
	return rc;
}

void adm_state_reapply(const gwb_table *t, ups_registry *reg)
{
	pthread_mutex_lock(&mu);
	size_t applied = 0, inactive = 0;
	for (uint32_t i = 0; i < gwb_nupstreams(t); i++) {
		const char *name = gwb_str(t, gwb_upstream_at(t, i)->name, NULL);
		ups_upstream *u = ups_find(reg, name);
		entry *e = find_entry(name);
		char err[256];
		if (!u)
			continue;
		if (e) {
			if (apply(u, &e->list, err, sizeof err) < 0)
				log_err("admin state: upstream '%s': override not applied: %s", name, err);
			else
				applied++;
		} else if (ups_has_override(u) && apply(u, NULL, err, sizeof err) < 0) {
			log_err("admin state: upstream '%s': stale override not dropped: %s", name, err);
		}
	}
	for (size_t i = 0; i < nents; i++)
		if (!ups_find(reg, ents[i].name)) {
			inactive++;
			log_warn("admin state: upstream '%s' is not in the table: its override is "
			         "kept but inactive", ents[i].name);
		}
	if (applied || inactive)
		log_info("admin state: %zu override(s) applied, %zu inactive", applied, inactive);
	pthread_mutex_unlock(&mu);
}

/* Replace (nl != NULL) or remove (nl == NULL) the entry for name: persist,
 * apply, then change memory. Caller holds mu. Returns an HTTP status. */
static int commit(const char *name, const adm_list *nl, char *err, size_t errlen)
{
	entry *old = find_entry(name);
	size_t at = old ? (size_t)(old - ents) : 0;
	if (!old)
		while (at < nents && strcmp(ents[at].name, name) < 0)
			at++;
	if (!old && !nl)
		return 200;
	size_t nn = nents + (old ? 0 : 1) - (nl ? 0 : 1);
	entry *nv = malloc((nn ? nn : 1) * sizeof *nv);
	entry ne = { NULL, { NULL, 0 } };
	if (!nv || (nl && (!(ne.name = strdup(name)) || adm_list_copy(&ne.list, nl) < 0))) {
		free(nv);
		free(ne.name);
		adm_list_free(&ne.list);
		snprintf(err, errlen, "out of memory");
		return 500;
	}
	/* shallow copies of the others: ownership moves only on success */
	size_t k = 0;
	for (size_t i = 0; i < at; i++)
		nv[k++] = ents[i];
	if (nl)
		nv[k++] = ne;
	for (size_t i = at + (old ? 1 : 0); i < nents; i++)
		nv[k++] = ents[i];

	int w = write_state(nv, nn, err, errlen);
	if (w < 0) {
		if (w == -2) {
			char e2[256];
			if (write_state(ents, nents, e2, sizeof e2) != 0)
				log_err("admin state: %s; restoring the old state failed too: %s", err, e2);
		}
		log_err("admin: upstream '%s' not changed: %s", name, err);
		free(nv);
		free(ne.name);
		adm_list_free(&ne.list);
		return 500;
	}
	ups_upstream *u = ups_find(registry, name);
	if (u && apply(u, nl, err, errlen) < 0) {
		char e2[256];
		if (write_state(ents, nents, e2, sizeof e2) != 0)
			log_err("admin state: %s now differs from what is in effect (%s): %s",
			        spath, err, e2);
		log_err("admin: upstream '%s' not changed: %s", name, err);
		free(nv);
		free(ne.name);
		adm_list_free(&ne.list);
		return 500;
	}
	if (old) {
		free(old->name);
		adm_list_free(&old->list);
	}
	free(ents);
	ents = nv;
	nents = nn;
	if (!u && nl)
		log_warn("admin: upstream '%s' is not in the table: override kept, inactive "
		         "until a table declares it", name);
	log_info("admin: upstream '%s' %s%s", name, nl ? "servers replaced" : "override dropped",
	         sdir ? " (saved)" : " (not persisted: no state_dir)");
	return 200;
}

/* the servers NAME has now, as admin-API servers: its override, else the
 * table's list (from its current snapshot). 0, or 404 / 500 with err */
static int current_list(const char *name, adm_list *out, int *dynamic,
                        char *err, size_t errlen)
{
	ups_upstream *u = ups_find(registry, name);
	entry *e = find_entry(name);
	const gwb_upstream *o = u ? ups_options(u) : NULL;
	*dynamic = o && (o->flags & GWB_UPS_DYNAMIC);
	if (e) {
		if (adm_list_copy(out, &e->list) < 0)
			goto oom;
		return 0;
	}
	if (!u) {
		snprintf(err, errlen, "no upstream '%s'", name);
		return 404;
	}
	adm_list l = { NULL, 0 };
	ups_snapshot *s = ups_acquire(u);
	for (size_t i = 0; s && i < s->n; i++) {
		const ups_server *v = s->servers[i];
		char addr[ADDR_HOST_MAX + 32];
		/* the table keeps https:// as a flag, the admin API in the address */
		snprintf(addr, sizeof addr, "%s%s",
		         v->https && strncmp(v->addr, "https://", 8) ? "https://" : "", v->addr);
		adm_server as = { addr, v->weight, v->max_fails, v->fail_timeout_ms,
		                  v->backup, atomic_load(&v->drain) };
		if (adm_list_push(&l, &as) < 0) {
			ups_release(s);
			adm_list_free(&l);
			goto oom;
		}
	}
	ups_release(s);
	*out = l;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return 500;
}

int adm_state_set(const char *name, const adm_list *servers, char *err, size_t errlen)
{
	if (servers->n == 0) {
		snprintf(err, errlen, "no servers (DELETE the upstream to drop its override)");
		return 400;
	}
	pthread_mutex_lock(&mu);
	int rc;
	if (!ups_find(registry, name) && !find_entry(name) && !adm_valid_name(name)) {
		snprintf(err, errlen, "'%s' is not a valid upstream name", name);
		rc = 400;
	} else {
		rc = commit(name, servers, err, errlen);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int adm_state_drop(const char *name, char *err, size_t errlen)
{
	pthread_mutex_lock(&mu);
	int rc;
	if (!ups_find(registry, name) && !find_entry(name)) {
		snprintf(err, errlen, "no upstream '%s'", name);
		rc = 404;
	} else {
		rc = commit(name, NULL, err, errlen);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

static ssize_t find_addr(const adm_list *l, const char *addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].addr, addr))
			return (ssize_t)i;
	return -1;
}

int adm_state_server_put(const char *name, const adm_server *s, char *err, size_t errlen)
{
	adm_list l = { NULL, 0 };
	int dyn;
	pthread_mutex_lock(&mu);
	int rc = current_list(name, &l, &dyn, err, errlen);
	if (rc)
		goto out;
	ssize_t i = find_addr(&l, s->addr);
	if (i >= 0) {
		char *a = l.v[i].addr;
		l.v[i] = *s;
		l.v[i].addr = a;
	} else if (l.n >= GWB_MAX_SERVERS) {
		snprintf(err, errlen, "too many servers (limit is %u)", GWB_MAX_SERVERS);
		rc = 409;
		goto out;
	} else if (adm_list_push(&l, s) < 0) {
		snprintf(err, errlen, "out of memory");
		rc = 500;
		goto out;
	}
	rc = commit(name, &l, err, errlen);
out:
	pthread_mutex_unlock(&mu);
	adm_list_free(&l);
	return rc;
}

int adm_state_server_del(const char *name, const char *addr, char *err, size_t errlen)
{
	adm_list l = { NULL, 0 };
	int dyn;
	pthread_mutex_lock(&mu);
	int rc = current_list(name, &l, &dyn, err, errlen);
	if (rc)
		goto out;
	ssize_t i = find_addr(&l, addr);
	if (i < 0) {
		snprintf(err, errlen, "upstream '%s' has no server '%s'", name, addr);
		rc = 404;
		goto out;
	}
	free(l.v[i].addr);
	memmove(&l.v[i], &l.v[i + 1], (l.n - (size_t)i - 1) * sizeof *l.v);
	l.n--;
	if (l.n == 0 && !dyn && ups_find(registry, name)) {
		snprintf(err, errlen, "'%s' is its last server: DELETE /api/upstreams/%s "
		         "drops the override (back to the table's servers)", addr, name);
		rc = 409;
		goto out;
	}
	rc = commit(name, l.n ? &l : NULL, err, errlen);
out:
	pthread_mutex_unlock(&mu);
	adm_list_free(&l);
	return rc;
}

int adm_state_server_drain(const char *name, const char *addr, int on,
                           char *err, size_t errlen)
{
	adm_list l = { NULL, 0 };
	int dyn;
	pthread_mutex_lock(&mu);
	int rc = current_list(name, &l, &dyn, err, errlen);
	if (rc)
		goto out;
	ssize_t i = find_addr(&l, addr);
	if (i < 0) {
		snprintf(err, errlen, "upstream '%s' has no server '%s'", name, addr);
		rc = 404;
		goto out;
	}
	l.v[i].drain = on != 0;
	rc = commit(name, &l, err, errlen);
out:
	pthread_mutex_unlock(&mu);
	adm_list_free(&l);
	return rc;
}

/* -------------------------------------------------------------- views */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* the view of an upstream of the table: its live snapshot */
static void view_live(ups_upstream *u, void (*fn)(const adm_view *, void *), void *ctx)
{
	const gwb_upstream *o = ups_options(u);
	adm_view v = { .name = ups_name(u), .in_table = 1,
	               .override = ups_has_override(u),
	               .dynamic = o && (o->flags & GWB_UPS_DYNAMIC),
	               .balance = o ? (int)o->balance : 0 };
	ups_snapshot *s = ups_acquire(u);
	size_t n = s ? s->n : 0;
	char (*addrs)[ADDR_HOST_MAX + 32] = n ? calloc(n, sizeof *addrs) : NULL;
	v.v = n ? calloc(n, sizeof *v.v) : NULL;
	if (n && (!v.v || !addrs))
		n = 0;                              /* out of memory: show no servers */
	uint64_t now = mono_ms();
	for (size_t i = 0; i < n; i++) {
		const ups_server *sv = s->servers[i];
		adm_view_server *w = &v.v[i];
		snprintf(addrs[i], sizeof addrs[i], "%s%s",
		         sv->https && strncmp(sv->addr, "https://", 8) ? "https://" : "", sv->addr);
		w->s = (adm_server){ addrs[i], sv->weight, sv->max_fails, sv->fail_timeout_ms,
		                     sv->backup, atomic_load(&sv->drain) };
		w->live = 1;
		w->available = ups_server_available(sv, now);
		long long du = atomic_load(&sv->down_until_ms);
		w->ejected = du != 0 && now < (uint64_t)du;
		w->health_down = atomic_load(&sv->health_down) != 0;
		w->active = atomic_load(&sv->active);
		w->requests = atomic_load(&sv->requests);
		w->failures = atomic_load(&sv->failures);
		w->fails = atomic_load(&sv->fails);
		/* health.c's lock is a leaf lock: safe under ours and the snapshot */
		w->health = health_server_state(u, sv);
		if (w->health != HEALTH_NONE)
			w->has_hinfo = health_server_info(v.name, sv->addr, &w->hinfo) == 0;
		if (o && (o->flags & GWB_UPS_BREAKER)) {
			w->has_breaker = 1;
			breaker_info(s->servers[i], now, &w->brk);
		}
	}
	v.n = n;
	fn(&v, ctx);
	ups_release(s);
	free(v.v);
	free(addrs);
}

static void view_entry(const entry *e, void (*fn)(const adm_view *, void *), void *ctx)
{
	adm_view v = { .name = e->name, .override = 1, .balance = -1 };
	v.v = e->list.n ? calloc(e->list.n, sizeof *v.v) : NULL;
	if (v.v) {
		for (size_t i = 0; i < e->list.n; i++)
			v.v[i].s = e->list.v[i];
		v.n = e->list.n;
	}
	fn(&v, ctx);
	free(v.v);
}

int adm_state_view(const char *name, void (*fn)(const adm_view *v, void *ctx), void *ctx)
{
	pthread_mutex_lock(&mu);
	ups_upstream *u = ups_find(registry, name);
	entry *e = u ? NULL : find_entry(name);
	if (u)
		view_live(u, fn, ctx);
	else if (e)
		view_entry(e, fn, ctx);
	pthread_mutex_unlock(&mu);
	return u || e ? 0 : 404;
}

typedef struct all_ctx {
	void (*fn)(const adm_view *, void *);
	void *ctx;
} all_ctx;

static int view_one(ups_upstream *u, void *ctx)
{
	all_ctx *a = ctx;
	view_live(u, a->fn, a->ctx);
	return 0;
}

void adm_state_view_all(void (*fn)(const adm_view *v, void *ctx), void *ctx)
{
	all_ctx a = { fn, ctx };
	pthread_mutex_lock(&mu);
	ups_foreach(registry, view_one, &a);
	for (size_t i = 0; i < nents; i++)
		if (!ups_find(registry, ents[i].name))
			view_entry(&ents[i], fn, ctx);
	pthread_mutex_unlock(&mu);
}

void adm_state_counts(size_t *overrides, size_t *inactive, int *persisted, const char **dir)
{
	pthread_mutex_lock(&mu);
	*overrides = nents;
	*inactive = 0;
	for (size_t i = 0; i < nents; i++)
		*inactive += ups_find(registry, ents[i].name) == NULL;
	*persisted = sdir != NULL;
	*dir = sdir;
	pthread_mutex_unlock(&mu);
}
