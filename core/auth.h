/* auth.h: accounts, tokens and sessions (placeholder until the accounts module lands). */
#ifndef PARLEY_CORE_AUTH_H
#define PARLEY_CORE_AUTH_H

#include <stddef.h>

enum auth_role { AUTH_NONE = 0, AUTH_AGENT = 1, AUTH_ADMIN = 2, AUTH_SERVICE = 3 };

struct auth_principal {
	enum auth_role role;
	char name[128];
	char **teams;
	size_t n_teams;
	char **scopes; /* service: the ops allowed; n_scopes 0 = every op */
	size_t n_scopes;
};

#endif
