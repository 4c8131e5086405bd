/*
 * waf_xss.c — cross-site scripting detection with an HTML tokenizer.
 *
 * The value is already decoded (percent, entities, JS escapes), lowercased
 * and blank-folded. What makes markup dangerous is structural, so that is
 * what is looked for, in the places a value can land in a page:
 *
 *   text content    a tag opens: `<` + a name + a name terminator. Tags
 *                   that run or load code (script, iframe, object, embed,
 *                   svg, math, base, form, meta, link, style...) are
 *                   refused outright; any other tag is refused when its
 *                   attributes carry an event handler (on...=), a script
 *                   URL (javascript:, vbscript:, data:text/html), a CSS
 *                   expression or an srcdoc document.
 *   attribute value the value breaks out of a quoted or unquoted attribute
 *                   and adds its own: a *known* event handler name after a
 *                   blank, quote or slash, followed by '=' (" onfocus=...).
 *   URL attribute   the value is a script URL; since "JavaScript: The Good
 *                   Parts" is a fine search, a call or an assignment has to
 *                   follow the scheme (javascript:alert(1), javascript://).
 *   JS string       a call of a sink (alert, prompt, eval, setTimeout,
 *                   fromCharCode, constructor...) or window[...]/top[...].
 *
 * Blanks and control characters between the letters of a scheme are
 * skipped (browsers drop tabs and newlines in URLs: java&#9;script:).
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "waf.h"

static int is_blank(unsigned char c)
{
	return c <= 0x20 || c == 0x7f;
}

static int is_alpha(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}

static int is_ident(unsigned char c)
{
	return is_alpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '$' || (c >= 'A' && c <= 'Z');
}

static int word_in(const unsigned char *w, size_t len, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == len && !memcmp(*list, w, len))
			return 1;
	return 0;
}

/* tags that load or run code by themselves */
static const char *const dangerous_tags[] = {
	"script", "iframe", "frame", "frameset", "object", "embed", "applet", "base",
	"svg", "math", "form", "meta", "link", "style", "isindex", "xml", "import",
	"portal", "bgsound", "layer", "ilayer", "xss", NULL
};

/* event handler names (without "on"); the attribute-context check, which has
 * no '<' to go by, only trusts these */
static const char *const events[] = {
	"abort", "activate", "afterprint", "afterscriptexecute", "animationcancel",
	"animationend", "animationiteration", "animationstart", "auxclick", "beforeactivate",
	"beforecopy", "beforecut", "beforedeactivate", "beforeinput", "beforepaste",
	"beforeprint", "beforescriptexecute", "beforetoggle", "beforeunload", "begin", "blur",
	"bounce", "cancel", "canplay", "canplaythrough", "change", "click", "close",
	"contextmenu", "copy", "cuechange", "cut", "dblclick", "deactivate", "drag", "dragend",
	"dragenter", "dragexit", "dragleave", "dragover", "dragstart", "drop",
	"durationchange", "emptied", "end", "ended", "error", "finish", "focus", "focusin",
	"focusout", "formdata", "fullscreenchange", "hashchange", "input", "invalid",
	"keydown", "keypress", "keyup", "load", "loadeddata", "loadedmetadata", "loadend",
	"loadstart", "message", "mousedown", "mouseenter", "mouseleave", "mousemove",
	"mouseout", "mouseover", "mouseup", "mousewheel", "offline", "online", "pagehide",
	"pageshow", "paste", "pause", "play", "playing", "pointercancel", "pointerdown",
	"pointerenter", "pointerleave", "pointermove", "pointerout", "pointerover",
	"pointerrawupdate", "pointerup", "popstate", "progress", "propertychange",
	"ratechange", "readystatechange", "repeat", "reset", "resize", "scroll", "scrollend",
	"search", "securitypolicyviolation", "seeked", "seeking", "select",
	"selectionchange", "selectstart", "show", "start", "stalled", "storage", "submit",
	"suspend", "timeupdate", "toggle", "touchcancel", "touchend", "touchmove",
	"touchstart", "transitioncancel", "transitionend", "transitionrun",
	"transitionstart", "unhandledrejection", "unload", "volumechange", "waiting",
	"webkitanimationend", "webkitanimationiteration", "webkitanimationstart",
	"webkittransitionend", "wheel", "zoom", "help", "filterchange", "losecapture",
	"move", "moveend", "movestart", "rowenter", "rowexit", "rowsdelete", "rowsinserted",
	"datasetchanged", "dataavailable", "errorupdate", "layoutcomplete", "controlselect",
	"mscontentzoom", NULL
};

/* English words that look like on+letters, harmless as attribute names */
static const char *const on_words[] = {
	"online", "onion", "onions", "onset", "onsets", "onward", "onwards", "onboard",
	"ontology", "onerous", "onstage", "onsite", NULL
};

/* name[0..len) is "on" + an event name; strict: known names only */
static int is_event(const unsigned char *w, size_t len, int strict)
{
	if (len < 5 || w[0] != 'o' || w[1] != 'n')
		return 0;
	for (size_t i = 2; i < len; i++)
		if (!is_alpha(w[i]))
			return 0;
	if (word_in(w + 2, len - 2, events))
		return 1;
	return !strict && !word_in(w, len, on_words);
}

/* Match the letters of `word` at s[i], allowing blanks and control chars
 * between them, then ':' ; returns the position after ':' or 0. */
static size_t match_scheme(const unsigned char *s, size_t n, size_t i, const char *word)
{
	for (const char *w = word; *w; w++) {
		if (w != word)
			while (i < n && is_blank(s[i]))
				i++;
		if (i >= n || s[i] != (unsigned char)*w)
			return 0;
		i++;
	}
	while (i < n && is_blank(s[i]))
		i++;
	if (i < n && s[i] == ':')
		return i + 1;
	return 0;
}

/* a script URL scheme at s[i]; returns the position after it or 0 */
static size_t script_scheme(const unsigned char *s, size_t n, size_t i, int in_tag)
{
	size_t e;
	switch (s[i]) {
	case 'j':
		return match_scheme(s, n, i, "javascript");
	case 'v':
		return match_scheme(s, n, i, "vbscript");
	case 'l':
		return match_scheme(s, n, i, "livescript");
	case 'd':
		if ((e = match_scheme(s, n, i, "data")) != 0) {
			while (e < n && is_blank(s[e]))
				e++;
			static const char *const types[] = {
				"text/html", "text/javascript", "application/javascript",
				"application/x-javascript", "text/xml", "application/xhtml", NULL};
			for (int k = 0; types[k]; k++) {
				size_t l = strlen(types[k]);
				if ((size_t)(n - e) >= l && !memcmp(s + e, types[k], l))
					return e + l;
			}
			/* an svg image runs its scripts when it is a document */
			if (in_tag && n - e >= 13 && !memcmp(s + e, "image/svg+xml", 13))
				return e + 13;
		}
		return 0;
	default:
		return 0;
	}
}

/* after a scheme outside a tag: does code follow? (a call, a template
 * call, an assignment, or the javascript:// comment trick) */
static int code_follows(const unsigned char *s, size_t n, size_t i)
{
	while (i < n && is_blank(s[i]))
		i++;
	if (n - i >= 2 && s[i] == '/' && s[i + 1] == '/')
		return 1;
	size_t end = n - i > 120 ? i + 120 : n;
	for (size_t k = i; k < end; k++) {
		if ((s[k] == '(' || s[k] == '`') && k > i &&
		    (is_ident(s[k - 1]) || s[k - 1] == ')' || s[k - 1] == ']'))
			return 1;
		if (s[k] == '=' || s[k] == '[')
			return 1;
	}
	return 0;
}

/* after a CSS property name: blanks, ':', blanks, "url(" */
static int url_follows(const unsigned char *s, size_t i, size_t end)
{
	while (i < end && is_blank(s[i]))
		i++;
	if (i >= end || s[i] != ':')
		return 0;
	i++;
	while (i < end && is_blank(s[i]))
		i++;
	return end - i >= 4 && !memcmp(s + i, "url(", 4);
}

/* CSS that runs script: expression(), -moz-binding, behavior: url() */
static size_t css_code(const unsigned char *s, size_t n, size_t i, size_t end)
{
	for (size_t k = i; k < end; k++) {
		if (s[k] == 'e' && end - k >= 10 && !memcmp(s + k, "expression", 10)) {
			size_t j = k + 10;
			while (j < end && is_blank(s[j]))
				j++;
			if (j < end && s[j] == '(')
				return k + 1;
		}
		/* -moz-binding: url(...), behavior: url(x.htc) */
		if (s[k] == '-' && end - k >= 12 && !memcmp(s + k, "-moz-binding", 12) &&
		    url_follows(s, k + 12, end))
			return k + 1;
		if (s[k] == 'b' && end - k >= 8 && !memcmp(s + k, "behavior", 8) &&
		    url_follows(s, k + 8, end))
			return k + 1;
	}
	return 0;
}

typedef struct xres {
	const char *rule;
	size_t pos;
} xres;

static int found(xres *r, const char *rule, size_t pos)
{
	r->rule = rule;
	r->pos = pos;
	return 1;
}

/* Attributes of a tag from s[i] (after the name) to its '>' or the end;
 * *end receives where the tag ends, so the caller does not scan those
 * bytes again for attributes (that would make "<a <a <a ..." quadratic). */
static int scan_tag_attrs(const unsigned char *s, size_t n, size_t i, size_t *end, xres *r)
{
	*end = n;
	while (i < n) {
		unsigned char c = s[i];
		if (c == '>') {
			*end = i + 1;
			return 0;
		}
		if (is_blank(c) || c == '/' || c == '"' || c == '\'' || c == '`') {
			i++;
			continue;
		}
		size_t ns = i;
		while (i < n && !is_blank(s[i]) && s[i] != '/' && s[i] != '>' && s[i] != '=')
			i++;
		size_t ne = i;
		if (ne == ns) {
			i++;  /* a stray '=' */
			continue;
		}
		size_t j = i;
		while (j < n && is_blank(s[j]))
			j++;
		int has_val = j < n && s[j] == '=';

		/* on<event> followed by junk up to the '=' (onload!#$%...=) */
		size_t ev = ns + 2;
		while (ev < ne && is_alpha(s[ev]))
			ev++;
		if (is_event(s + ns, ne - ns, 0) && has_val)
			return found(r, "xss-event-handler", ns);
		if (ev < ne && is_event(s + ns, ev - ns, 1)) {
			for (size_t k = ne; k < n && k < ne + 64 && !is_blank(s[k]) && s[k] != '>'; k++)
				if (s[k] == '=')
					return found(r, "xss-event-handler", ns);
			if (has_val)
				return found(r, "xss-event-handler", ns);
		}
		if (ne - ns == 6 && !memcmp(s + ns, "srcdoc", 6) && has_val)
			return found(r, "xss-srcdoc", ns);
		if (!has_val)
			continue;

		/* the value */
		j++;
		while (j < n && is_blank(s[j]))
			j++;
		size_t vs = j, ve;
		if (j < n && (s[j] == '"' || s[j] == '\'' || s[j] == '`')) {
			unsigned char q = s[j];
			const unsigned char *qe = memchr(s + j + 1, q, n - j - 1);
			vs = j + 1;
			if (!qe) {
				/* an unterminated quote hides nothing: read on after it */
				ve = vs;
				i = vs;
			} else {
				ve = (size_t)(qe - s);
				i = ve + 1;
			}
		} else {
			ve = j;
			while (ve < n && !is_blank(s[ve]) && s[ve] != '>')
				ve++;
			i = ve;
		}
		for (size_t k = vs; k < ve; k++)
			if (script_scheme(s, ve, k, 1))
				return found(r, "xss-js-url", k);
		size_t p;
		if ((p = css_code(s, n, vs, ve)) != 0)
			return found(r, "xss-css", p - 1);
	}
	return 0;
}

/* text content: tags */
static int check_tags(const unsigned char *s, size_t n, xres *r)
{
	size_t scanned = 0;   /* attributes before this were read already */
	for (const unsigned char *p = memchr(s, '<', n); p; p = memchr(p + 1, '<', (size_t)(s + n - p - 1))) {
		size_t i = (size_t)(p - s) + 1;
		if (i >= n)
			break;
		if (!is_alpha(s[i]))
			continue;  /* "< 3", "</b>", "<!--": not an opening tag */
		size_t ns = i;
		while (i < n && (is_ident(s[i]) || s[i] == ':' || s[i] == '-'))
			i++;
		/* the name must end like a tag name does */
		if (i < n && !is_blank(s[i]) && s[i] != '/' && s[i] != '>')
			continue;
		if (i - ns == 6 && !memcmp(s + ns, "script", 6))
			return found(r, "xss-script-tag", ns - 1);
		if (word_in(s + ns, i - ns, dangerous_tags))
			return found(r, "xss-tag", ns - 1);
		if (i >= scanned && scan_tag_attrs(s, n, i, &scanned, r))
			return 1;
	}
	return 0;
}

/* attribute context: " onfocus=..., ' onmouseover='..., x onclick=... */
static int check_attr_breakout(const unsigned char *s, size_t n, xres *r)
{
	for (size_t i = 0; i + 5 < n; i++) {
		if (s[i] != 'o' || s[i + 1] != 'n')
			continue;
		if (i > 0 && !is_blank(s[i - 1]) && s[i - 1] != '"' && s[i - 1] != '\'' &&
		    s[i - 1] != '/' && s[i - 1] != '`')
			continue;
		size_t e = i + 2;
		while (e < n && is_alpha(s[e]))
			e++;
		if (!is_event(s + i, e - i, 1)) {
			i = e - 1;  /* an "on" inside this word is not after a separator */
			continue;
		}
		while (e < n && is_blank(s[e]))
			e++;
		if (e < n && s[e] == '=') {
			e++;
			while (e < n && is_blank(s[e]))
				e++;
			if (e < n && s[e] != '>')
				return found(r, "xss-event-handler", i);
		}
	}
	/* " style="x:expression(...)" */
	for (size_t from = 0, p; (p = css_code(s, n, from, n)) != 0; from = p) {
		size_t k = p - 1;
		/* expression( only counts as a CSS value (after ':') */
		if (s[k] != 'e')
			return found(r, "xss-css", k);
		while (k > 0 && is_blank(s[k - 1]))
			k--;
		if (k > 0 && s[k - 1] == ':')
			return found(r, "xss-css", p - 1);
	}
	return 0;
}

/* URL attribute: the value is a script URL */
static int check_scheme(const unsigned char *s, size_t n, xres *r)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != 'j' && s[i] != 'v' && s[i] != 'l' && s[i] != 'd')
			continue;
		if (i > 0 && is_ident(s[i - 1]))
			continue;
		size_t e = script_scheme(s, n, i, 0);
		if (!e)
			continue;
		if (s[i] == 'd' || code_follows(s, n, e))
			return found(r, "xss-js-url", i);
	}
	return 0;
}

/* Is the call at s[i] (start of a dotted name) in code position: at the
 * start of the value, or after a character that ends a string or an
 * expression (';', a quote, an operator, a bracket)? "Use alert() for
 * debugging" is prose about code, not code. */
static int call_context(const unsigned char *s, size_t i)
{
	while (i > 0 && (is_ident(s[i - 1]) || s[i - 1] == '.'))
		i--;
	while (i > 0 && is_blank(s[i - 1]))
		i--;
	return i == 0 || strchr(";'\"`+-*/%|&(=,{}[]:<>!?~^", s[i - 1]) != NULL;
}

/* JS string context: sink calls */
static int check_js(const unsigned char *s, size_t n, xres *r)
{
	static const char *const sinks[] = {
		"alert", "prompt", "confirm", "eval", "settimeout", "setinterval",
		"execscript", "fromcharcode", "atob", "constructor", "write", "writeln",
		"msgbox", "import", NULL};
	static const char *const globals[] = {"window", "top", "self", "parent", "this",
					      "frames", "globalthis", "document", NULL};
	size_t brk = 0;   /* how far the break-out look-back has searched */
	for (size_t i = 0; i < n; i++) {
		if (!is_alpha(s[i]) || (i > 0 && is_ident(s[i - 1])))
			continue;
		size_t e = i;
		while (e < n && is_ident(s[e]))
			e++;
		if (e >= n) {
			break;
		}
		size_t len = e - i;
		if (len < 3 || len > 12)
			goto next;  /* no sink, global or "document" has another length */
		if ((s[e] == '(' || s[e] == '`') && word_in(s + i, len, sinks) &&
		    call_context(s, i)) {
			/* write( and import( only as document.write( / import('...') */
			if ((len == 5 && !memcmp(s + i, "write", 5)) || (len == 7 && !memcmp(s + i, "writeln", 7))) {
				if (i < 9 || memcmp(s + i - 9, "document.", 9))
					goto next;
			}
			if (len == 6 && !memcmp(s + i, "import", 6) &&
			    !(e + 1 < n && (s[e + 1] == '\'' || s[e + 1] == '"' || s[e + 1] == '`')))
				goto next;
			return found(r, "xss-js-call", i);
		}
		if (s[e] == '[' && word_in(s + i, len, globals) && e + 1 < n &&
		    (s[e + 1] == '\'' || s[e + 1] == '"' || s[e + 1] == '`' || s[e + 1] == '/'))
			return found(r, "xss-js-call", i);
		if (len == 8 && !memcmp(s + i, "document", 8) && n - e >= 7 &&
		    (!memcmp(s + e, ".cookie", 7) || !memcmp(s + e, ".domain", 7))) {
			/* only after a string break-out character */
			for (; brk < i; brk++)
				if (strchr("<'\";+(`", s[brk]) && s[brk])
					return found(r, "xss-js-call", i);
		}
	next:
		i = e;
	}
	return 0;
}

const char *waf_xss_check(const char *str, size_t n, size_t *pos)
{
	const unsigned char *s = (const unsigned char *)str;
	xres r = {0};

	/* every rule needs one of these: a tag, a quote, a scheme or CSS
	 * property colon, a call, an attribute '=', an index, a statement end */
	static const unsigned char need[256] = {
		['<'] = 1, ['"'] = 1, ['\''] = 1, ['`'] = 1, [':'] = 1, ['('] = 1,
		['='] = 1, ['['] = 1, [';'] = 1, ['+'] = 1,
	};
	size_t z = 0;
	while (z < n && !need[s[z]])
		z++;
	if (z == n)
		return NULL;
	int lt = memchr(s + z, '<', n - z) != NULL;

	if ((lt && check_tags(s, n, &r)) || check_attr_breakout(s, n, &r) ||
	    check_scheme(s, n, &r) || check_js(s, n, &r)) {
		if (pos)
			*pos = r.pos;
		return r.rule;
	}
	return NULL;
}
