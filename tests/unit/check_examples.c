/*
 * check_examples.c — validate the YAML examples of examples/ without the
 * tools that would (promtool, actionlint): CI machines usually have
 * neither; tests/unit/test_packaging.sh runs promtool too when installed.
 *
 *   check_examples alerts RULES.yml KNOWN...
 *   check_examples workflow WORKFLOW.yml
 *
 * alerts:
 * RULES.yml is read with libyaml. Checked: the rule-file structure
 * (groups: [{name, rules: [{alert|record, expr, for, labels, annotations}]}],
 * unique group and alert names, no unknown keys), `for` durations, a
 * severity label of critical|warning|info, summary and description
 * annotations with balanced {{ }}, expressions with balanced (), [], {}
 * and closed strings, and every metric name an expression uses: it must be
 * one gwd exports. KNOWN files say which: any gw_* / process_* word in them
 * (runtime/metrics.c, a /metrics scrape) is a name, and a name declared a
 * histogram there ("# TYPE x histogram" in a scrape, or `"x", "histogram"`
 * in the source) also brings x_bucket, x_sum and x_count. `up` is
 * Prometheus' own.
 *
 * workflow: a GitHub Actions workflow's shape: top-level keys, every job
 * with runs-on and steps, every step with exactly one of run and uses, and
 * every `uses` pinned to a version (owner/repo@ref).
 *
 * Prints every problem as FILE:LINE:COL: message; exit 0 when none,
 * 1 otherwise, 2 on usage or I/O errors.
 */
#include <config.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char *g_file;
static int g_errors;

static void err_at(const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void err_at(const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "%s:%zu:%zu: ", g_file, n ? n->start_mark.line + 1 : 0,
	        n ? n->start_mark.column + 1 : 0);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	g_errors++;
}

/* ------------------------------------------------------- known names */

static char **known; static size_t nknown, capknown;

static void known_add(const char *s, size_t n)
{
	for (size_t i = 0; i < nknown; i++)
		if (strlen(known[i]) == n && !memcmp(known[i], s, n))
			return;
	if (nknown == capknown) {
		capknown = capknown ? capknown * 2 : 256;
		known = realloc(known, capknown * sizeof *known);
		if (!known)
			exit(2);
	}
	known[nknown] = strndup(s, n);
	if (!known[nknown])
		exit(2);
	nknown++;
}

static int is_known(const char *s, size_t n)
{
	for (size_t i = 0; i < nknown; i++)
		if (strlen(known[i]) == n && !memcmp(known[i], s, n))
			return 1;
	return 0;
}

static int name_char(int c)
{
	return isalnum(c) || c == '_' || c == ':';
}

static void histogram(const char *s, size_t n)
{
	static const char *const suf[] = { "_bucket", "_sum", "_count" };
	char buf[256];
	for (size_t k = 0; k < 3 && n + strlen(suf[k]) < sizeof buf; k++) {
		memcpy(buf, s, n);
		strcpy(buf + n, suf[k]);
		known_add(buf, strlen(buf));
	}
}

static int read_known(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 1 << 16, len = 0;
	char *text = malloc(cap);
	for (size_t r; text && (r = fread(text + len, 1, cap - len - 1, f)) > 0;) {
		len += r;
		if (len + 1 == cap) {
			char *bigger = realloc(text, cap *= 2);
			if (!bigger)
				free(text);
			text = bigger;
		}
	}
	fclose(f);
	if (!text) {
		fprintf(stderr, "%s: out of memory\n", path);
		return -1;
	}
	text[len] = '\0';
	for (char *p = text; *p; p++) {
		int start = (p == text || !name_char((unsigned char)p[-1]));
		if (!start || (strncmp(p, "gw_", 3) && strncmp(p, "process_", 8)))
			continue;
		size_t n = 0;
		while (name_char((unsigned char)p[n]))
			n++;
		known_add(p, n);
		/* `"x", "histogram"` (metrics.c) or "# TYPE x histogram" */
		const char *q = p + n;
		if (*q == '"')
			q++;
		while (*q == ',' || isspace((unsigned char)*q))
			q++;
		if (!strncmp(q, "\"histogram\"", 11) || !strncmp(q, "histogram", 9))
			histogram(p, n);
		p += n - 1;
	}
	free(text);
	return 0;
}

/* ------------------------------------------------------ PromQL names */

static int word_is(const char *s, size_t n, const char *const *list)
{
	for (size_t i = 0; list[i]; i++)
		if (strlen(list[i]) == n && !strncmp(s, list[i], n))
			return 1;
	return 0;
}

/* Every metric name in expr must be known. Skipped: strings, label
 * matchers { }, ranges [ ], function calls, keywords, the label lists of
 * by/without/on/ignoring/group_left/group_right, numbers and durations. */
static void check_expr(const yaml_node_t *n, const char *expr, int *used)
{
	static const char *const kw[] = { "and", "or", "unless", "by", "without", "on",
	                                  "ignoring", "group_left", "group_right", "offset",
	                                  "bool", "inf", "nan", "Inf", "NaN", "atan2",
	                                  /* aggregation operators: `sum by (x) (...)` */
	                                  "sum", "min", "max", "avg", "group", "stddev",
	                                  "stdvar", "count", "count_values", "bottomk", "topk",
	                                  "quantile", NULL };
	static const char *const grouping[] = { "by", "without", "on", "ignoring",
	                                        "group_left", "group_right", NULL };
	static const char *const builtin[] = { "up", "scrape_duration_seconds",
	                                       "scrape_samples_scraped", NULL };
	int paren = 0;
	for (const char *p = expr; *p;) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\'' || c == '`') {
			const char *q = p + 1;
			while (*q && *q != (char)c)
				q += (*q == '\\' && q[1] && c != '`') ? 2 : 1;
			if (!*q) {
				err_at(n, "unterminated string in expr");
				return;
			}
			p = q + 1;
		} else if (c == '{' || c == '[') {
			/* label matchers or a range: skip to the close, strings inside */
			char close = c == '{' ? '}' : ']';
			const char *q = p + 1;
			while (*q && *q != close) {
				if (*q == '"') {
					q++;
					while (*q && *q != '"')
						q += (*q == '\\' && q[1]) ? 2 : 1;
					if (!*q)
						break;
				}
				q++;
			}
			if (!*q) {
				err_at(n, "'%c' without '%c' in expr", c, close);
				return;
			}
			p = q + 1;
		} else if (c == '}' || c == ']') {
			err_at(n, "unbalanced '%c' in expr", c);
			return;
		} else if (c == '(') {
			paren++;
			p++;
		} else if (c == ')') {
			if (--paren < 0) {
				err_at(n, "unbalanced ')' in expr");
				return;
			}
			p++;
		} else if (isdigit(c) || (c == '.' && isdigit((unsigned char)p[1]))) {
			while (isalnum((unsigned char)*p) || *p == '.' || *p == '+' || *p == '-')
				p++;
		} else if (isalpha(c) || c == '_' || c == ':') {
			const char *w = p;
			while (name_char((unsigned char)*p))
				p++;
			size_t len = (size_t)(p - w);
			const char *after = p;
			while (isspace((unsigned char)*after))
				after++;
			if (word_is(w, len, grouping) && *after == '(') {
				/* a label list: skip it */
				const char *q = strchr(after, ')');
				if (!q) {
					err_at(n, "unclosed label list in expr");
					return;
				}
				p = q + 1;
				continue;
			}
			if (*after == '(' || word_is(w, len, kw))
				continue;            /* a function or a keyword */
			if (word_is(w, len, builtin))
				continue;
			if (!is_known(w, len))
				err_at(n, "metric '%.*s' is not one gwd exports", (int)len, w);
			else
				(*used)++;
		} else {
			p++;
		}
	}
	if (paren)
		err_at(n, "unbalanced '(' in expr");
}

/* ----------------------------------------------------------- the file */

static yaml_document_t doc;

static yaml_node_t *node(int id)
{
	return id ? yaml_document_get_node(&doc, id) : NULL;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* the value of key in a mapping, NULL if absent */
static yaml_node_t *get(const yaml_node_t *m, const char *key)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		const char *k = scalar(node(p->key));
		if (k && !strcmp(k, key))
			return node(p->value);
	}
	return NULL;
}

static void only_keys(const yaml_node_t *m, const char *what, const char *const *allowed)
{
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		const char *k = scalar(node(p->key));
		if (!k || !word_is(k, strlen(k), allowed))
			err_at(node(p->key), "unknown key '%s' in %s", k ? k : "?", what);
	}
}

/* Prometheus durations: 1h30m, 5m, 30s, 500ms, 1d, 1w, 1y */
static int duration_ok(const char *s)
{
	if (!*s)
		return 0;
	while (*s) {
		if (!isdigit((unsigned char)*s))
			return 0;
		while (isdigit((unsigned char)*s))
			s++;
		if (!strncmp(s, "ms", 2))
			s += 2;
		else if (*s && strchr("smhdwy", *s))
			s++;
		else
			return 0;
	}
	return 1;
}

static int templates_ok(const char *s)
{
	int depth = 0;
	for (; *s; s++) {
		if (s[0] == '{' && s[1] == '{') {
			if (depth++)
				return 0;
			s++;
		} else if (s[0] == '}' && s[1] == '}') {
			if (!depth--)
				return 0;
			s++;
		}
	}
	return depth == 0;
}

static char *names[1024]; static size_t nnames;

static int seen_name(const char *s)
{
	for (size_t i = 0; i < nnames; i++)
		if (!strcmp(names[i], s))
			return 1;
	if (nnames < sizeof names / sizeof *names)
		names[nnames++] = strdup(s);
	return 0;
}

static void check_rule(const yaml_node_t *r, int *nalerts, int *used)
{
	static const char *const rule_keys[] = { "alert", "record", "expr", "for", "keep_firing_for",
	                                         "labels", "annotations", NULL };
	if (r->type != YAML_MAPPING_NODE) {
		err_at(r, "a rule must be a mapping");
		return;
	}
	only_keys(r, "a rule", rule_keys);
	const char *alert = scalar(get(r, "alert")), *record = scalar(get(r, "record"));
	const char *expr = scalar(get(r, "expr"));
	if (!alert == !record) {
		err_at(r, "a rule needs exactly one of alert and record");
		return;
	}
	if (!expr || !*expr)
		err_at(r, "rule without expr");
	else
		check_expr(get(r, "expr"), expr, used);
	if (record)
		return;
	(*nalerts)++;
	if (!isupper((unsigned char)alert[0]))
		err_at(get(r, "alert"), "alert '%s': names are CamelCase", alert);
	if (seen_name(alert))
		err_at(get(r, "alert"), "duplicate alert '%s'", alert);
	const yaml_node_t *f = get(r, "for");
	if (f && (!scalar(f) || !duration_ok(scalar(f))))
		err_at(f, "alert '%s': 'for' is not a duration", alert);
	const yaml_node_t *l = get(r, "labels");
	const char *sev = l && l->type == YAML_MAPPING_NODE ? scalar(get(l, "severity")) : NULL;
	if (!sev || (strcmp(sev, "critical") && strcmp(sev, "warning") && strcmp(sev, "info")))
		err_at(l ? l : r, "alert '%s': labels.severity must be critical, warning or info", alert);
	const yaml_node_t *a = get(r, "annotations");
	if (!a || a->type != YAML_MAPPING_NODE) {
		err_at(r, "alert '%s' has no annotations", alert);
		return;
	}
	static const char *const need[] = { "summary", "description", NULL };
	for (size_t i = 0; need[i]; i++) {
		const char *v = scalar(get(a, need[i]));
		if (!v || !*v)
			err_at(a, "alert '%s' has no %s", alert, need[i]);
		else if (!templates_ok(v))
			err_at(get(a, need[i]), "alert '%s': unbalanced {{ }} in %s", alert, need[i]);
	}
}

static void free_all(void)
{
	for (size_t i = 0; i < nknown; i++)
		free(known[i]);
	free(known);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
}

/* g_file into doc: 0, or 1 (reported) / 2 (I/O) */
static int load(void)
{
	FILE *f = fopen(g_file, "rb");
	if (!f) {
		perror(g_file);
		return 2;
	}
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_input_file(&p, f);
	int ok = yaml_parser_load(&p, &doc);
	if (!ok)
		fprintf(stderr, "%s:%zu:%zu: YAML: %s\n", g_file, p.problem_mark.line + 1,
		        p.problem_mark.column + 1, p.problem ? p.problem : "error");
	yaml_parser_delete(&p);
	fclose(f);
	if (ok && !yaml_document_get_root_node(&doc)) {
		fprintf(stderr, "%s: empty document\n", g_file);
		yaml_document_delete(&doc);
		ok = 0;
	}
	return ok ? 0 : 1;
}

static int workflow(void)
{
	static const char *const top_keys[] = { "name", "on", "permissions", "env", "defaults",
	                                        "concurrency", "jobs", "run-name", NULL };
	static const char *const job_keys[] = { "name", "runs-on", "needs", "if", "permissions",
	                                        "env", "defaults", "steps", "timeout-minutes",
	                                        "strategy", "continue-on-error", "container",
	                                        "services", "outputs", "concurrency", "environment",
	                                        NULL };
	static const char *const step_keys[] = { "name", "id", "if", "uses", "run", "with", "env",
	                                         "shell", "working-directory", "continue-on-error",
	                                         "timeout-minutes", NULL };
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (root->type != YAML_MAPPING_NODE) {
		err_at(root, "a workflow is a mapping");
		return 1;
	}
	only_keys(root, "the workflow", top_keys);
	if (!get(root, "on"))
		err_at(root, "no 'on' (triggers)");
	yaml_node_t *jobs = get(root, "jobs");
	int njobs = 0, nsteps = 0;
	if (!jobs || jobs->type != YAML_MAPPING_NODE) {
		err_at(root, "no 'jobs' mapping");
		return 1;
	}
	for (yaml_node_pair_t *jp = jobs->data.mapping.pairs.start; jp < jobs->data.mapping.pairs.top;
	     jp++) {
		yaml_node_t *job = node(jp->value);
		const char *jname = scalar(node(jp->key));
		njobs++;
		if (job->type != YAML_MAPPING_NODE) {
			err_at(job, "job '%s' is not a mapping", jname);
			continue;
		}
		only_keys(job, "a job", job_keys);
		if (!get(job, "runs-on"))
			err_at(job, "job '%s' has no runs-on", jname);
		yaml_node_t *steps = get(job, "steps");
		if (!steps || steps->type != YAML_SEQUENCE_NODE) {
			err_at(job, "job '%s' has no steps list", jname);
			continue;
		}
		for (yaml_node_item_t *it = steps->data.sequence.items.start;
		     it < steps->data.sequence.items.top; it++) {
			yaml_node_t *st = node(*it);
			nsteps++;
			if (st->type != YAML_MAPPING_NODE) {
				err_at(st, "a step is a mapping");
				continue;
			}
			only_keys(st, "a step", step_keys);
			const char *run = scalar(get(st, "run")), *uses = scalar(get(st, "uses"));
			if (!run == !uses)
				err_at(st, "a step needs exactly one of run and uses");
			if (uses && (!strchr(uses, '/') || !strchr(uses, '@')))
				err_at(get(st, "uses"), "'%s': actions are owner/repo@version", uses);
			if (get(st, "with") && !uses)
				err_at(get(st, "with"), "'with' without 'uses'");
		}
	}
	yaml_document_delete(&doc);
	if (g_errors) {
		fprintf(stderr, "%s: %d problem(s)\n", g_file, g_errors);
		return 1;
	}
	printf("%s: ok: %d jobs, %d steps\n", g_file, njobs, nsteps);
	return 0;
}

int main(int argc, char **argv)
{
	atexit(free_all);
	if (argc == 3 && !strcmp(argv[1], "workflow")) {
		g_file = argv[2];
		int rc = load();
		return rc ? rc : workflow();
	}
	if (argc < 4 || strcmp(argv[1], "alerts")) {
		fprintf(stderr, "usage: check_examples alerts RULES.yml KNOWN...\n"
		        "       check_examples workflow WORKFLOW.yml\n");
		return 2;
	}
	g_file = argv[2];
	for (int i = 3; i < argc; i++)
		if (read_known(argv[i]) != 0)
			return 2;
	int rc = load();
	if (rc)
		return rc;

	int ngroups = 0, nalerts = 0, used = 0;
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t *groups = root && root->type == YAML_MAPPING_NODE ? get(root, "groups") : NULL;
	if (!groups || groups->type != YAML_SEQUENCE_NODE) {
		err_at(root, "expected a mapping with a 'groups' list");
	} else {
		static const char *const top_keys[] = { "groups", NULL };
		static const char *const group_keys[] = { "name", "interval", "limit", "rules", NULL };
		only_keys(root, "the file", top_keys);
		char *gnames[256];
		int ng = 0;
		for (yaml_node_item_t *it = groups->data.sequence.items.start;
		     it < groups->data.sequence.items.top; it++) {
			yaml_node_t *g = node(*it);
			ngroups++;
			if (g->type != YAML_MAPPING_NODE) {
				err_at(g, "a group must be a mapping");
				continue;
			}
			only_keys(g, "a group", group_keys);
			const char *name = scalar(get(g, "name"));
			if (!name || !*name)
				err_at(g, "group without a name");
			for (int k = 0; name && k < ng; k++)
				if (!strcmp(gnames[k], name))
					err_at(g, "duplicate group '%s'", name);
			if (name && ng < 256)
				gnames[ng++] = (char *)name;
			yaml_node_t *rules = get(g, "rules");
			if (!rules || rules->type != YAML_SEQUENCE_NODE ||
			    rules->data.sequence.items.start == rules->data.sequence.items.top) {
				err_at(g, "group '%s' has no rules", name ? name : "?");
				continue;
			}
			for (yaml_node_item_t *ri = rules->data.sequence.items.start;
			     ri < rules->data.sequence.items.top; ri++)
				check_rule(node(*ri), &nalerts, &used);
		}
	}
	yaml_document_delete(&doc);
	if (g_errors) {
		fprintf(stderr, "%s: %d problem(s)\n", g_file, g_errors);
		return 1;
	}
	printf("%s: ok: %d groups, %d alerts, %d metric references to %zu known names\n", g_file,
	       ngroups, nalerts, used, nknown);
	return 0;
}
