/*
 * plugin_list.h — the plugins compiled into gwd, in dispatch-table order
 * (a plugin's position is its id for gw_req_ctx()). Each entry P(name)
 * refers to `const gw_plugin gw_plugin_name` defined in its own file.
 * An opcode may be claimed by one plugin only (checked at start-up).
 */
#ifndef GWD_PLUGIN_LIST_H
#define GWD_PLUGIN_LIST_H

#define GW_PLUGIN_LIST(P) \
	P(core) \
	P(consumer) P(access) P(auth_key) P(auth_basic) P(auth_jwt) \
	P(ratelimit) P(connlimit) \
	P(cache) P(cors) P(body_limit) P(logctl) \
	P(waf) \
	P(metrics) \
	/* (add a line above this one; each ends with a backslash) */

#endif /* GWD_PLUGIN_LIST_H */
