/*
 * diag.c — collecting and printing diagnostics (text like GCC, JSON, SARIF).
 *
 * Diagnostics are kept, not printed at once, so that every stage can add
 * to them and the driver prints them all sorted by position in one format.
 * A note belongs to the error or warning before it ("previous definition
 * is here") and travels with it when sorting, wherever it points.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		fputs("gwc: out of memory\n", stderr);
		abort();
	}
	return q;
}

void diag_init(diag_ctx *d)
{
	memset(d, 0, sizeof *d);
}

void diag_fini(diag_ctx *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].msg);
	free(d->v);
	memset(d, 0, sizeof *d);
}

void diag_add(diag_ctx *d, enum diag_level lv, ast_pos pos, uint32_t span,
              const char *name, const char *fmt, ...)
{
	va_list ap;
	int n;
	diag *g;

	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 16;
		d->v = xrealloc(d->v, d->cap * sizeof *d->v);
	}
	g = &d->v[d->n];
	g->level = lv;
	g->pos = pos;
	g->span = span ? span : 1;
	g->name = name;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	g->msg = xrealloc(NULL, (size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(g->msg, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	d->n++;
	if (lv == DIAG_ERROR)
		d->nerrors++;
	else if (lv == DIAG_WARNING)
		d->nwarnings++;
}

int diag_failed(const diag_ctx *d)
{
	return d->nerrors > 0 || (d->strict && d->nwarnings > 0);
}

/* ---------------------------------------------------------------- sort */
struct skey { const diag *head; size_t group, idx; };

static int pos_cmp(const ast_pos *a, const ast_pos *b)
{
	if (a->src != b->src)
		return a->src < b->src ? -1 : 1;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

static int skey_cmp(const void *x, const void *y)
{
	const struct skey *a = x, *b = y;
	int c = pos_cmp(&a->head->pos, &b->head->pos);

	if (c)
		return c;
	if (a->group != b->group)
		return a->group < b->group ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

void diag_sort(diag_ctx *d)
{
	struct skey *k;
	diag *v;
	size_t group = 0;

	if (d->n < 2)
		return;
	k = xrealloc(NULL, d->n * sizeof *k);
	for (size_t i = 0; i < d->n; i++) {
		/* a note sorts with the diagnostic it follows */
		if (d->v[i].level != DIAG_NOTE || i == 0)
			group = i;
		k[i].head = &d->v[group];
		k[i].group = group;
		k[i].idx = i;
	}
	qsort(k, d->n, sizeof *k, skey_cmp);
	v = xrealloc(NULL, d->n * sizeof *v);
	for (size_t i = 0; i < d->n; i++)
		v[i] = d->v[k[i].idx];
	free(d->v);
	free(k);
	d->v = v;
	d->cap = d->n;
}

/* ------------------------------------------------------------------ text */
static const char *level_name(const diag_ctx *d, enum diag_level lv)
{
	switch (lv) {
	case DIAG_ERROR: return "error";
	case DIAG_WARNING: return d->strict ? "error" : "warning";
	default: return "note";
	}
}

/* the source line of pos, or NULL when the text is not at hand */
static const char *source_line(const diag_ctx *d, const ast_pos *pos, size_t *len)
{
	const ast_source *s;
	const char *p, *e, *end;
	uint32_t line = 1;

	if (!d->sources || pos->src >= d->nsources || pos->line == 0)
		return NULL;
	s = &d->sources[pos->src];
	if (!s->text || (pos->file && s->path && strcmp(pos->file, s->path) != 0))
		return NULL;
	p = s->text;
	end = s->text + s->len;
	while (line < pos->line) {
		p = memchr(p, '\n', (size_t)(end - p));
		if (!p)
			return NULL;
		p++;
		line++;
	}
	e = memchr(p, '\n', (size_t)(end - p));
	if (!e)
		e = end;
	if (e > p && e[-1] == '\r')
		e--;
	*len = (size_t)(e - p);
	return p;
}

static void print_caret(const diag_ctx *d, const diag *g, FILE *out)
{
	size_t len, col, span;
	const char *line = source_line(d, &g->pos, &len);

	if (!line)
		return;
	fprintf(out, "%.*s\n", (int)len, line);
	col = g->pos.col ? g->pos.col - 1 : 0;
	if (col > len)
		col = len;
	/* keep tabs so that the caret lines up under the same column */
	for (size_t i = 0; i < col; i++)
		fputc(line[i] == '\t' ? '\t' : ' ', out);
	fputc('^', out);
	span = g->span;
	if (col + span > len)
		span = len > col ? len - col : 1;
	for (size_t i = 1; i < span; i++)
		fputc('~', out);
	fputc('\n', out);
}

static void print_loc(const diag *g, FILE *out)
{
	if (!g->pos.file)
		fputs("gwc: ", out);
	else if (g->pos.line == 0)
		fprintf(out, "%s: ", g->pos.file);
	else
		fprintf(out, "%s:%u:%u: ", g->pos.file, g->pos.line, g->pos.col);
}

void diag_print_text(const diag_ctx *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const diag *g = &d->v[i];
		print_loc(g, out);
		fprintf(out, "%s: %s", level_name(d, g->level), g->msg);
		if (g->name)
			fprintf(out, " [-W%s]", g->name);
		fputc('\n', out);
		print_caret(d, g, out);
	}
}

/* ------------------------------------------------------------------ JSON */
static void json_str(const char *s, FILE *out)
{
	if (!s) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\t': fputs("\\t", out); break;
		case '\r': fputs("\\r", out); break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

static size_t effective(const diag_ctx *d, enum diag_level lv)
{
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++) {
		enum diag_level l = d->v[i].level;
		if (l == DIAG_WARNING && d->strict)
			l = DIAG_ERROR;
		n += l == lv;
	}
	return n;
}

void diag_print_json(const diag_ctx *d, FILE *out)
{
	fputs("{\"diagnostics\":[", out);
	for (size_t i = 0; i < d->n; i++) {
		const diag *g = &d->v[i];
		fputs(i ? ",{\"file\":" : "{\"file\":", out);
		json_str(g->pos.file, out);
		fprintf(out, ",\"line\":%u,\"column\":%u,\"level\":", g->pos.line, g->pos.col);
		json_str(level_name(d, g->level), out);
		fputs(",\"message\":", out);
		json_str(g->msg, out);
		fputs(",\"name\":", out);
		json_str(g->name, out);
		fputc('}', out);
	}
	fprintf(out, "],\"errors\":%zu,\"warnings\":%zu}\n",
	        effective(d, DIAG_ERROR), effective(d, DIAG_WARNING));
}

/* ----------------------------------------------------------------- SARIF */
/* artifactLocation.uri is a URI reference: percent-encode what is not
 * unreserved or a path separator */
static void uri_str(const char *s, FILE *out)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~/", *p))
			fputc(*p, out);
		else
			fprintf(out, "%%%02X", *p);
	}
	fputc('"', out);
}

void diag_print_sarif(const diag_ctx *d, FILE *out)
{
	fputs("{\"$schema\":\"https://json.schemastore.org/sarif-2.1.0.json\","
	      "\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"gwc\","
	      "\"informationUri\":\"https://example.invalid/gw\",\"version\":\"" PACKAGE_VERSION "\"}},"
	      "\"results\":[", out);
	for (size_t i = 0; i < d->n; i++) {
		const diag *g = &d->v[i];
		fputs(i ? ",{\"ruleId\":" : "{\"ruleId\":", out);
		json_str(g->name ? g->name : "gwc", out);
		fputs(",\"level\":", out);
		json_str(level_name(d, g->level), out);
		fputs(",\"message\":{\"text\":", out);
		json_str(g->msg, out);
		fputc('}', out);
		if (g->pos.file) {
			fputs(",\"locations\":[{\"physicalLocation\":{\"artifactLocation\":{\"uri\":", out);
			uri_str(g->pos.file, out);
			fputc('}', out);
			if (g->pos.line)
				fprintf(out, ",\"region\":{\"startLine\":%u,\"startColumn\":%u,\"endColumn\":%u}",
				        g->pos.line, g->pos.col ? g->pos.col : 1,
				        (g->pos.col ? g->pos.col : 1) + g->span);
			fputs("}}]", out);
		}
		fputc('}', out);
	}
	fputs("]}]}\n", out);
}

/* ----------------------------------------------------------- suggestions */
static unsigned char fold(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* Edit distance (Levenshtein plus adjacent transpositions, "optimal
 * string alignment"), case-insensitive: a wrong case and swapped letters
 * are the likeliest typos of all. Gives up (returns cap + 1) as soon as
 * the distance must exceed cap. */
static size_t lev(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t r0[64], r1[64], r2[64];     /* rows i-2, i-1, i */
	size_t *pp = r0, *p = r1, *c = r2, *t;

	if (la > 63 || lb > 63)
		return cap + 1;
	if ((la > lb ? la - lb : lb - la) > cap)
		return cap + 1;
	for (size_t j = 0; j <= lb; j++)
		p[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t best;
		unsigned char ca = fold((unsigned char)a[i - 1]);
		c[0] = best = i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned char cb = fold((unsigned char)b[j - 1]);
			size_t v = p[j - 1] + (ca != cb);
			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && ca == fold((unsigned char)b[j - 2]) &&
			    fold((unsigned char)a[i - 2]) == cb && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
			if (v < best)
				best = v;
		}
		if (best > cap)
			return cap + 1;
		t = pp;
		pp = p;
		p = c;
		c = t;
	}
	return p[lb];
}

const char *diag_suggest(const char *word, const char *const *cands, size_t n)
{
	size_t len = strlen(word);
	size_t cap = len / 3 > 1 ? len / 3 : 1;
	size_t best = cap + 1;
	const char *pick = NULL;

	for (size_t i = 0; i < n; i++) {
		size_t dist;
		if (!cands[i] || strcmp(cands[i], word) == 0)
			continue;
		dist = lev(word, cands[i], cap);
		if (dist < best) {
			best = dist;
			pick = cands[i];
		}
	}
	return pick;
}
