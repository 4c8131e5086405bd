/*
 * waf_misc.c — the small classes: path traversal, scanners, and the class
 * names. All matching is on normalised (decoded, lowercased) text with
 * fixed lists; no regexes.
 */
#include "config.h"

#include <string.h>

#include "waf.h"

static const char *const class_names[] = {"sqli", "xss", "traversal", "scanner", "protocol"};

const char *waf_class_name(unsigned cls)
{
	for (unsigned i = 0; i < 5; i++)
		if (cls == 1u << i)
			return class_names[i];
	return "?";
}

unsigned waf_class_from_name(const char *name, size_t len)
{
	for (unsigned i = 0; i < 5; i++)
		if (strlen(class_names[i]) == len && !memcmp(class_names[i], name, len))
			return 1u << i;
	return 0;
}

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

static int is_sep(unsigned char c)
{
	return c == '/' || c == '\\';
}

/* Match pattern p at s[i]: a '/' in p matches a run of '/' and '\' and
 * "./" segments (c:\windows\\.\win.ini). Returns the end or 0. */
static size_t path_match(const unsigned char *s, size_t n, size_t i, const char *p)
{
	for (; *p; p++) {
		if (*p == '/') {
			if (i >= n || !is_sep(s[i]))
				return 0;
			for (;;) {
				while (i < n && is_sep(s[i]))
					i++;
				if (i + 1 < n && s[i] == '.' && is_sep(s[i + 1]))
					i++;
				else
					break;
			}
			continue;
		}
		if (i >= n || s[i] != (unsigned char)*p)
			return 0;
		i++;
	}
	return i;
}

/* files an attacker reads through traversal or inclusion, grouped by the
 * letter after the first slash so a '/' costs one switch */
static const char *const sens_e[] = {
	"/etc/passwd", "/etc/shadow", "/etc/group", "/etc/hosts", "/etc/issue",
	"/etc/hostname", "/etc/sudoers", "/etc/crontab", "/etc/fstab", "/etc/mysql/",
	"/etc/apache2/", "/etc/httpd/", "/etc/nginx/", "/etc/ssh/", "/etc/security/", NULL};
static const char *const sens_p[] = {
	"/proc/self/", "/proc/version", "/proc/cpuinfo", "/proc/mounts", "/proc/net/",
	"/program files/", NULL};
static const char *const sens_v[] = {
	"/var/log/apache", "/var/log/nginx", "/var/log/httpd", "/var/log/auth.log", NULL};
static const char *const sens_dot[] = {
	"/.ssh/", "/.bash", "/.aws/credentials", "/.htpasswd", "/.htaccess", "/.cshrc", "/.profile",
	"/.forward", "/.logout", "/.netrc", NULL};
static const char *const sens_a[] = {
	"/apache/logs/", "/apache2/logs/", "/appserv/", NULL};
static const char *const sens_l[] = {
	"/logs/access_log", "/logs/access.log", "/logs/error_log", "/logs/error.log",
	"/logs/pure-ftpd.log", NULL};
static const char *const sens_w[] = {
	"/windows/win.ini", "/windows/system.ini", "/windows/system32/", "/winnt/",
	"/web-inf/web.xml", NULL};
static const char *const sens_misc[] = {
	"/boot.ini", "/boot/grub/", "/inetpub/", "/inetsrv/", "/usr/local/apache", "/system32/",
	"/repair/sam", "/bin/sh", "/bin/bash", "/bin/cat", "/bin/id", "/bin/php.ini", NULL};

static const char *const *sensitive_for(unsigned char c)
{
	switch (c) {
	case 'e': return sens_e;
	case 'p': return sens_p;
	case 'v': return sens_v;
	case '.': return sens_dot;
	case 'w': return sens_w;
	case 'a': return sens_a;
	case 'l': return sens_l;
	case 'b': case 'i': case 'u': case 's': case 'r': return sens_misc;
	default: return NULL;
	}
}

/* stream wrappers of include(), file reading in XXE and SSRF (the part
 * before "://") */
static const char *const wrappers[] = {
	"php", "file", "expect", "phar", "zip", "glob", "data", "compress.zlib",
	"compress.bzip2", NULL
};

static const unsigned char tr_kind[256] = {['.'] = 1, ['/'] = 2, ['\\'] = 2, [':'] = 3};

static const char *sensitive_at(const unsigned char *s, size_t n, size_t i, int noslash,
				size_t *next)
{
	/* the first letter after the separators picks the list; a match
	 * starting inside this run of separators would be the same match */
	size_t f = i;
	while (f < n && (is_sep(s[f]) || (s[f] == '.' && f + 1 < n && is_sep(s[f + 1]))))
		f++;
	*next = f;
	const char *const *list = sensitive_for(f < n ? s[f] : 0);
	for (int k = 0; list && list[k]; k++)
		if (path_match(s, n, i, list[k] + noslash))
			return "traversal-sensitive-file";
	/* Any other file under /etc (LFI lists walk hundreds: ftp, php, mail,
	 * syslog configs) when the path is the value itself, maybe behind
	 * ../ or a drive: "/etc/vsftpd.conf", "../../etc/motd". Not in the
	 * middle of a path ("/v1/etc/config" is a route). */
	if (f < n && s[f] == 'e' && path_match(s, n, i, "/etc/" + noslash) && f + 4 < n &&
	    is_alnum(s[f + 4])) {
		size_t k = 0;
		while (k < i && (s[k] == '.' || is_sep(s[k]) || s[k] == ' ' || s[k] == '\n' ||
				 s[k] == '"' || s[k] == '\''))
			k++;
		if (k == i)
			return "traversal-sensitive-file";
	}
	return NULL;
}

/* A path inside prose ("run ln -s ../conf.avail/x", "edit /etc/nginx/...
 * and reload") is not something a file API will open: an inclusion or
 * traversal payload is the value itself. So in a value with blanks, the
 * path must be its first word, or follow a shell metacharacter (a command
 * injection reading it: "; cat /etc/passwd"). */
static int path_word_ok(const unsigned char *s, size_t n, size_t i, int blanks)
{
	if (!blanks)
		return 1;
	size_t b = 0;
	while (b < n && (s[b] == ' ' || s[b] == '\n' || s[b] == '"' || s[b] == '\'' || s[b] == '`'))
		b++;
	int word = 1;
	for (size_t k = b; k < i; k++) {
		if (s[k] == ' ' || s[k] == '\n')
			word = 0;
		if (s[k] == ';' || s[k] == '|' || s[k] == '&' || s[k] == '`' || s[k] == '$')
			return 1;
	}
	return word;
}

const char *waf_traversal_check(const char *str, size_t n, size_t *pos)
{
	const unsigned char *s = (const unsigned char *)str;
	const char *rule;
	size_t next = 0;
	int blanks = memchr(s, ' ', n) != NULL || memchr(s, '\n', n) != NULL;

	/* every rule needs a dot, a slash, a backslash or a colon */
	size_t i = 0;
	while (i < n && !tr_kind[s[i]])
		i++;
	if (i == n)
		return NULL;
	/* at the start of the value the leading slash is optional: etc/passwd */
	if (!is_sep(s[0]) && (rule = sensitive_at(s, n, 0, 1, &next))) {
		if (pos)
			*pos = 0;
		return rule;
	}
	next = 0;
	for (; i < n; i++) {
		switch (tr_kind[s[i]]) {
		case 1:
			if (i + 1 < n && s[i + 1] == '.') {
				size_t j = i + 2;
				if (j < n && s[j] == ';')
					j++;  /* ..;/ (path parameters of Java servers) */
				int before = i == 0 || !is_alnum(s[i - 1]);
				/* ../x, ../.., or a value that ends in /.. ; not the
				 * "../" of prose about a shell ("run `ls ../` to...") */
				int after = j + 1 >= n || is_alnum(s[j + 1]) || is_sep(s[j + 1]) ||
					    strchr("._-~%$", s[j + 1]);
				if (before && ((j < n && is_sep(s[j]) && after) ||
					       (j == n && i > 0 && is_sep(s[i - 1]))) &&
				    path_word_ok(s, n, i, blanks)) {
					if (pos)
						*pos = i;
					return "traversal-dotdot";
				}
			}
			break;
		case 2:
			/* a sensitive path, unless it is a word of prose ("how to
			 * read /etc/hosts"): attack values are a path, not a sentence */
			if (i >= next && (rule = sensitive_at(s, n, i, 0, &next)) &&
			    path_word_ok(s, n, i, blanks)) {
				if (pos)
					*pos = i;
				return rule;
			}
			break;
		case 3:
			if (i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/') {
				for (int k = 0; wrappers[k]; k++) {
					size_t l = strlen(wrappers[k]);
					if (i >= l && !memcmp(s + i - l, wrappers[k], l) &&
					    (i == l || !is_alnum(s[i - l - 1])) &&
					    path_word_ok(s, n, i - l, blanks)) {
						if (pos)
							*pos = i - l;
						return "traversal-wrapper";
					}
				}
			}
			if (i >= 3 && n - i >= 6 && !memcmp(s + i - 3, "jar:file:", 9)) {
				if (pos)
					*pos = i - 3;
				return "traversal-wrapper";
			}
			break;
		default:
			break;
		}
	}
	return NULL;
}

/* find word w in s with non-letter boundaries */
static size_t find_word(const unsigned char *s, size_t n, const char *w)
{
	size_t l = strlen(w);
	for (size_t i = 0; i + l <= n; i++) {
		if (s[i] != (unsigned char)w[0] || memcmp(s + i, w, l))
			continue;
		if (i > 0 && ((s[i - 1] >= 'a' && s[i - 1] <= 'z')))
			continue;
		if (i + l < n && s[i + l] >= 'a' && s[i + l] <= 'z')
			continue;
		return i + 1;
	}
	return 0;
}

/* User-Agent strings of attack tools (python-requests, curl, Go-http-client
 * and headless browsers are legitimate clients and not listed) */
static const char *const scanner_uas[] = {
	"sqlmap", "nikto", "nmap", "masscan", "zgrab", "nuclei", "acunetix", "wpscan",
	"dirbuster", "gobuster", "ffuf", "fuzz faster u fool", "havij", "w3af", "openvas",
	"nessus", "netsparker", "arachni", "skipfish", "whatweb", "wfuzz", "fimap",
	"commix", "xsstrike", "jaeles", "sqlninja", "bsqlbf", "pangolin", "paros",
	"webinspect", "morfeus", "zmeu", "feroxbuster", "dirb", "jorgee", "appscan",
	"burpcollaborator", "sqlsus", "webshag",
	"masscan-ng", "nmap scripting engine", "interactsh", "wapiti",
	/* the rest of coreruleset's scanners-user-agents.data */
	"useragent", "user-agent", "betabot", "bewica-security-scan", "bfac", "detectify",
	"fuzz faster", "whatwaf", "hexometer", "jbrofuzz", "libwhisker", "mozlila",
	"mozilla/5.g", "netlab360", "nettacker", "securityagent", "sitelockspider",
	"sysscan", "tsunamisecurityscanner", "webbandit", "wprecon", "l9explore", "l9tcpid",
	"vega", "appspider", "ironwasp", "qualysguard", "n-stalker", "cmsmap", "xsser",
	"joomscan", "droopescan", "ghauri", "wpprobe", "sstimap", "(hydra)", "tplmap",
	"dotdotpwn", "shortscan", "kadimus", "lfisuite", "panoptic", "lfimap", "graphw00f",
	"graphql-cop", "jsql", "noseyparker", "trufflehog", "yeswehack-hunter", "tinja",
	/* default User-Agents of other offensive tools (not the internet-wide
	 * surveys, CensysInspect or Shodan: research crawlers, let through) */
	"qualys", "hydra", "medusa", "metasploit", "sublist3r", "amass",
	"projectdiscovery", "naabu", "dirsearch", "wafw00f", "burp suite", NULL
};

const char *waf_scanner_ua(const char *str, size_t n, size_t *pos)
{
	const unsigned char *s = (const unsigned char *)str;
	for (int k = 0; scanner_uas[k]; k++) {
		size_t at = find_word(s, n, scanner_uas[k]);
		if (at) {
			if (pos)
				*pos = at - 1;
			return "scanner-ua";
		}
	}
	return NULL;
}

/* path segments that only a scanner asks for */
static const char *const probe_segments[] = {
	".env", ".git", ".svn", ".hg", ".bzr", ".ds_store", ".htaccess", ".htpasswd",
	".aws", ".ssh", ".idea", ".vscode", ".npmrc", ".dockerenv", ".bash_history",
	".git-credentials", ".travis.yml", "wp-config.php", "wp-login.php", "xmlrpc.php",
	"phpmyadmin", "phpinfo.php", "eval-stdin.php", "shell.php", "c99.php", "r57.php",
	"sftp-config.json", "backup.sql", "dump.sql", "database.sql", "db.sql", "web.config",
	"server-status", "server-info", "setup-config.php", "hnap1", "test-cgi", NULL
};

/* path fragments (matched anywhere) of known exploit probes */
static const char *const probe_paths[] = {
	"/actuator/env", "/actuator/heapdump", "/vendor/phpunit/", "/_ignition/execute-solution",
	"/boaform/", "/manager/html", "/solr/admin/", "/telescope/requests", "/cgi-bin/luci",
	"/setup.cgi", "/wls-wsat/", "/invoker/jmxinvokerservlet", "/jmx-console/",
	"/owa/auth/x.js", "/autodiscover/autodiscover.json", "/remote/fgt_lang", NULL
};

const char *waf_scanner_path(const char *str, size_t n, size_t *pos)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		while (i < n && s[i] == '/')
			i++;
		size_t b = i;
		while (i < n && s[i] != '/')
			i++;
		size_t len = i - b;
		if (len == 0)
			continue;
		for (int k = 0; probe_segments[k]; k++) {
			size_t l = strlen(probe_segments[k]);
			/* the segment itself, or a backup/variant of it
			 * (.env.local, wp-config.php.bak, .git/...) */
			if (len >= l && !memcmp(s + b, probe_segments[k], l) &&
			    (len == l || s[b + l] == '.' || s[b + l] == '~')) {
				if (pos)
					*pos = b;
				return "scanner-probe";
			}
		}
	}
	for (int k = 0; probe_paths[k]; k++) {
		size_t l = strlen(probe_paths[k]);
		for (size_t j = 0; j + l <= n; j++) {
			if (s[j] == '/' && !memcmp(s + j, probe_paths[k], l)) {
				if (pos)
					*pos = j;
				return "scanner-probe";
			}
		}
	}
	return NULL;
}
