/* SPDX-License-Identifier: GPL-2.0 */
/*
 * gcp_auth.h - OAuth 2.0 access tokens for the gcp provider.
 *
 * Sources (setting "credentials"; "auto" is the default):
 *
 *  service_account  a service-account JSON key file (setting
 *                   service_account_key, else GOOGLE_APPLICATION_CREDENTIALS):
 *                   a JWT {iss: client_email, scope, aud, iat, exp: iat +
 *                   3600} signed RS256 with the key's private
 *                   key (OpenSSL), header kid = private_key_id, POSTed to
 *                   the key's token_uri as grant_type
 *                   urn:ietf:params:oauth:grant-type:jwt-bearer (RFC 7523).
 *                   aud is always CMK_GCP_TOKEN_AUD, whatever token_uri is:
 *                   Google documents it so, and google-auth (gcloud) does
 *                   the same;
 *  metadata         the GCE metadata server (setting metadata_endpoint, else
 *                   http://$GCE_METADATA_HOST, else http://169.254.169.254):
 *                   GET /computeMetadata/v1/instance/service-accounts/
 *                   ACCOUNT/token with "Metadata-Flavor: Google"; the answer
 *                   must carry the same header back (anything else answering
 *                   on that address is not the metadata server);
 *  auto             service_account when a key file is configured or
 *                   GOOGLE_APPLICATION_CREDENTIALS is set, else metadata.
 *
 * A token is cached and refreshed once less than min(CMK_GCP_REFRESH_S,
 * half its lifetime) is left, so a steady caller never presents an expired
 * token.  When a refresh fails transiently (metadata server or token
 * endpoint unreachable, 5xx, 429) the cached token is used until it
 * actually expires.  A token endpoint that answers invalid_grant (key
 * deleted or disabled, account disabled) is a definitive "denied", once
 * the key file was read again: a rotated key (a new key file in place of
 * the old one) is picked up and the exchange sent once more.
 *
 * The private key, the signed JWT and the access token only live in
 * struct cmk_secret and OpenSSL's key object; JSON buffers that held them
 * are wiped.
 */
#ifndef CMK_GCP_AUTH_H
#define CMK_GCP_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "kms/credreload.h"
#include "core/err.h"
#include "kms/http.h"
#include "core/secret.h"

#define CMK_GCP_REFRESH_S	300	/* refresh at most this early */
#define CMK_GCP_JWT_LIFETIME_S	3600	/* Google's maximum */
#define CMK_GCP_TOKEN_AUD	"https://oauth2.googleapis.com/token"
#define CMK_GCP_SCOPE		"https://www.googleapis.com/auth/cloudkms"
#define CMK_GCP_METADATA_DEFAULT "http://169.254.169.254"
#define CMK_GCP_EMAIL_MAX	256

struct evp_pkey_st;

/**
 * struct cmk_gcp_sa_key - a parsed service-account JSON key
 * @client_email: the account ("name@project.iam.gserviceaccount.com")
 * @key_id: private_key_id (the JWT's kid)
 * @token_uri: where JWTs are exchanged for access tokens
 * @pkey: the RSA private key
 */
struct cmk_gcp_sa_key {
	char client_email[CMK_GCP_EMAIL_MAX];
	char key_id[128];
	char token_uri[512];
	struct evp_pkey_st *pkey;
};

enum cmk_gcp_cred_mode {
	CMK_GCP_CRED_AUTO,
	CMK_GCP_CRED_METADATA,
	CMK_GCP_CRED_SERVICE_ACCOUNT,
};

/* The token source with its cache (one per provider instance). */
struct cmk_gcp_token_src {
	enum cmk_gcp_cred_mode mode;	/* resolved: never AUTO after init */
	char key_path[4096];
	char metadata[256];		/* base URL, no trailing slash */
	char account[CMK_GCP_EMAIL_MAX];	/* metadata service account */
	struct cmk_http_opts md_http;	/* metadata: short, never a proxy */
	struct cmk_http_opts tok_http;	/* token_uri: the provider's options */
	struct cmk_gcp_sa_key sa;
	bool sa_loaded;
	struct cmk_secret *bearer;	/* "Bearer <token>" NUL-terminated */
	time_t issued, exp;
	bool stale;
	char source[320];		/* for messages: which identity */
	struct cmk_cred_reload reload;	/* failed key file reloads */
};

/*
 * cmk_gcp_token_src_init() - @mode "auto", "metadata", "service_account"
 * (NULL: auto); @key_path, @metadata, @account may be NULL (defaults
 * above).  @http: options for the token endpoint (CA bundle, timeouts).
 * A service-account key file is read and checked here, so a bad one fails
 * at start-up.
 */
int cmk_gcp_token_src_init(struct cmk_gcp_token_src *s, const char *mode,
			   const char *key_path, const char *metadata,
			   const char *account, const struct cmk_http_opts *http,
			   struct cmk_err *e);
void cmk_gcp_token_src_free(struct cmk_gcp_token_src *s);

/*
 * cmk_gcp_token_get() - the "Authorization" header value ("Bearer ..."),
 * owned by @s and valid until the next call.  Failures are local (bad key
 * file), transient (token source unreachable and no unexpired token) or
 * definitive (invalid_grant: the key or account was revoked).
 */
int cmk_gcp_token_get(struct cmk_gcp_token_src *s, time_t now,
		      const char **bearer, struct cmk_err *e);

/*
 * cmk_gcp_token_forget() - wipe the cached access token: the next use
 * fetches one, with no unexpired token to fall back on.  The service
 * account key (configuration) stays.
 */
void cmk_gcp_token_forget(struct cmk_gcp_token_src *s);

/* cmk_gcp_token_invalidate() - fetch a new token before the next use. */
void cmk_gcp_token_invalidate(struct cmk_gcp_token_src *s);

/*
 * cmk_gcp_token_src_reload_key() - read the service-account key file again;
 * *@changed says whether it holds another key (id, account or private
 * key) than the one in use, which it then replaces.  On failure the old
 * key stays.  A no-op for the metadata server.
 */
int cmk_gcp_token_src_reload_key(struct cmk_gcp_token_src *s, bool *changed,
				 struct cmk_err *e);

/* ---- exposed for unit tests ---------------------------------------------- */

/* cmk_gcp_sa_key_parse() - the JSON text of a key file ("type": "service_account"). */
int cmk_gcp_sa_key_parse(const char *json, size_t len, struct cmk_gcp_sa_key *k,
			 struct cmk_err *e);
void cmk_gcp_sa_key_free(struct cmk_gcp_sa_key *k);

/*
 * cmk_gcp_jwt_sign() - the signed assertion for @k at time @now, in a new
 * NUL-terminated secret ("<b64url header>.<b64url claims>.<b64url sig>").
 */
int cmk_gcp_jwt_sign(const struct cmk_gcp_sa_key *k, const char *scope,
		     time_t now, struct cmk_secret **jwt, struct cmk_err *e);

/*
 * cmk_gcp_token_parse() - {"access_token", "expires_in", "token_type"} as
 * the token endpoint and the metadata server answer; *bearer gets
 * "Bearer <token>", *exp = @now + expires_in.
 */
int cmk_gcp_token_parse(const char *json, size_t len, time_t now,
			struct cmk_secret **bearer, time_t *exp,
			struct cmk_err *e);

/* cmk_gcp_token_needs_refresh() - the refresh rule above. */
bool cmk_gcp_token_needs_refresh(const struct cmk_gcp_token_src *s, time_t now);

#endif /* CMK_GCP_AUTH_H */
