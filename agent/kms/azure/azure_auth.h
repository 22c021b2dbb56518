/* SPDX-License-Identifier: GPL-2.0 */
/*
 * azure_auth.h - Microsoft Entra ID (Azure AD) access tokens for the azure
 * provider, and the Key Vault authentication challenge.
 *
 * Two token sources (setting "credentials"):
 *
 *  managed_identity  (default) the VM's managed identity through IMDS:
 *      GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01
 *          &resource=RESOURCE[&client_id=ID]     with "Metadata: true",
 *      never through a proxy.  client_id picks a user-assigned identity.
 *  service_principal  client credentials grant (OAuth 2.0 v2 endpoint):
 *      POST {authority}/{tenant}/oauth2/v2.0/token
 *          grant_type=client_credentials&client_id=..&client_secret=..
 *          &scope=RESOURCE/.default
 *      The secret is read from client_secret_file (or AZURE_CLIENT_SECRET)
 *      and only ever lives in struct cmk_secret.  When Entra ID rejects it
 *      (invalid_client, unauthorized_client), it is read again from its
 *      source and, if it changed (a rotated secret), the token request is
 *      sent once more before the rejection counts.
 *
 * One token is cached per source.  It is refreshed CMK_AZURE_REFRESH_S
 * before it expires (or, for short-lived tokens, when half its lifetime is
 * over), so a Key Vault request never goes out with an expired token.  If
 * the refresh fails transiently (IMDS 404/410/429/5xx, AAD 429/5xx,
 * network) while the cached token is still valid, the cached token is used
 * and the refresh is tried again on the next call: no gap.
 *
 * The challenge: Key Vault answers a request without a token with 401 and
 *   WWW-Authenticate: Bearer authorization="https://login.../TENANT",
 *                     resource="https://vault.azure.net"
 * (or scope="..." instead of resource).  The provider sends such a bodiless
 * request first, as the Azure SDKs do, so neither the KEK (wrapkey) nor the
 * wrapped KEK goes to a server before it said which authority it trusts.
 */
#ifndef CMK_AZURE_AUTH_H
#define CMK_AZURE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "kms/credreload.h"
#include "core/err.h"
#include "kms/http.h"
#include "core/secret.h"

#define CMK_AZURE_IMDS_DEFAULT		"http://169.254.169.254"
#define CMK_AZURE_AUTHORITY_DEFAULT	"https://login.microsoftonline.com"
#define CMK_AZURE_REFRESH_S		300
#define CMK_AZURE_TOKEN_MAX		16384
#define CMK_AZURE_URL_MAX		300

enum cmk_azure_cred_mode {
	CMK_AZURE_CRED_MANAGED_IDENTITY,
	CMK_AZURE_CRED_SERVICE_PRINCIPAL,
};

/**
 * struct cmk_azure_token - one access token
 * @token: the bearer token (a secret)
 * @expires_on: when it expires (Unix time)
 * @obtained: when we got it
 * @resource: the resource it was issued for
 */
struct cmk_azure_token {
	struct cmk_secret *token;
	time_t expires_on;
	time_t obtained;
	char resource[CMK_AZURE_URL_MAX];
};

void cmk_azure_token_free(struct cmk_azure_token *t);

struct cmk_azure_auth {
	enum cmk_azure_cred_mode mode;
	char client_id[128];
	char tenant_id[128];
	char authority[CMK_AZURE_URL_MAX];	/* no trailing slash */
	char imds[CMK_AZURE_URL_MAX];		/* no trailing slash */
	struct cmk_secret *client_secret;
	char secret_file[4096];			/* "" : AZURE_CLIENT_SECRET */
	struct cmk_http_opts http;		/* AAD: https, proxy allowed */
	struct cmk_http_opts imds_http;		/* IMDS: never a proxy */
	struct cmk_azure_token cur;
	bool have;
	unsigned long fetches;			/* tokens obtained (diagnostics) */
	char source[320];			/* for messages, never secrets */
	struct cmk_cred_reload reload;		/* failed secret reloads */
};

/*
 * cmk_azure_auth_init() - @mode "managed_identity" or "service_principal"
 * (NULL: managed identity, or service principal when AZURE_CLIENT_SECRET
 * or @secret_file is given).  NULL strings take their defaults: client_id
 * from AZURE_CLIENT_ID, tenant_id from AZURE_TENANT_ID, authority from
 * AZURE_AUTHORITY_HOST else CMK_AZURE_AUTHORITY_DEFAULT, imds
 * CMK_AZURE_IMDS_DEFAULT.  @ca_bundle (may be NULL) is used for AAD.
 */
int cmk_azure_auth_init(struct cmk_azure_auth *a, const char *mode,
			const char *client_id, const char *tenant_id,
			const char *secret_file, const char *authority,
			const char *imds, const char *ca_bundle,
			struct cmk_err *e);
void cmk_azure_auth_free(struct cmk_azure_auth *a);

/*
 * cmk_azure_token_get() - a valid token for @resource ("https://vault.
 * azure.net"); @tenant (may be NULL) is the tenant the vault's challenge
 * named.  *@tok is owned by @a and valid until the next call.  Failures:
 * transient (token service unreachable, throttled, 5xx, and no cached
 * token still valid), definitive denied (AAD rejected the service
 * principal: invalid_client, unauthorized_client), local (no identity
 * assigned, tenant mismatch, malformed answers).
 */
int cmk_azure_token_get(struct cmk_azure_auth *a, time_t now,
			const char *resource, const char *tenant,
			const struct cmk_secret **tok, struct cmk_err *e);

/* cmk_azure_token_invalidate() - fetch a new token on the next call. */
void cmk_azure_token_invalidate(struct cmk_azure_auth *a);

/*
 * cmk_azure_auth_reload_secret() - read the service principal's client
 * secret again from client_secret_file (or AZURE_CLIENT_SECRET); *@changed
 * says whether it differs from the one in use.  On failure the old one
 * stays.
 */
int cmk_azure_auth_reload_secret(struct cmk_azure_auth *a, bool *changed,
				 struct cmk_err *e);

/* ---- pure helpers (exposed for unit tests) ------------------------------ */

/*
 * cmk_azure_token_parse() - an IMDS or AAD token answer: access_token,
 * and expires_in (seconds from @now, number or string; preferred: immune
 * to clock skew) or else expires_on (Unix time).  Fills @t (resource left
 * alone).
 */
int cmk_azure_token_parse(const char *json, size_t len, time_t now,
			  struct cmk_azure_token *t, struct cmk_err *e);

/* cmk_azure_token_fresh() - true while @t needs no refresh at @now. */
bool cmk_azure_token_fresh(const struct cmk_azure_token *t, time_t now);

/*
 * cmk_azure_token_classify() - the reason for a failed token answer
 * (@imds: from IMDS, else from AAD); @code receives the OAuth "error"
 * code (or ""), @msg its description (printable ASCII, cut to fit).
 */
enum cmk_reason cmk_azure_token_classify(bool imds, long status,
					 const char *body, size_t len,
					 char *code, size_t code_len,
					 char *msg, size_t msg_len);

/**
 * struct cmk_azure_challenge - a Key Vault WWW-Authenticate challenge
 * @authorization: authorization server URL ("https://login.../TENANT")
 * @tenant: first path segment of @authorization ("" if none)
 * @resource: the resource to get a token for (from resource=, or from
 *	scope= without its "/.default")
 */
struct cmk_azure_challenge {
	char authorization[CMK_AZURE_URL_MAX];
	char tenant[128];
	char resource[CMK_AZURE_URL_MAX];
};

/*
 * cmk_azure_challenge_parse() - parse a "Bearer k="v", ..." challenge as
 * the Azure SDK does (authorization or authorization_uri; scope wins over
 * resource).  -EPROTO if it is not a usable Bearer challenge.
 */
int cmk_azure_challenge_parse(const char *hdr, struct cmk_azure_challenge *c,
			      struct cmk_err *e);

/*
 * cmk_azure_challenge_resource_ok() - the SDK's verify_challenge_resource
 * rule: the vault host must end in "." + the resource's host, so a server
 * cannot send us to get a token for a resource it is not part of.
 */
bool cmk_azure_challenge_resource_ok(const char *vault_host,
				     const char *resource);

#endif /* CMK_AZURE_AUTH_H */
