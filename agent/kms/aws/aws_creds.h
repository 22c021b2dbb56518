/* SPDX-License-Identifier: GPL-2.0 */
/*
 * aws_creds.h - AWS credentials for the aws provider.
 *
 * Sources, in this order when the mode is "auto" (the default):
 *
 *  1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally
 *     AWS_SESSION_TOKEN;
 *  2. shared files: profile @profile (else AWS_PROFILE, else "default") in
 *     the credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *     ~/.aws/credentials, section "[name]"), then in the config file
 *     (AWS_CONFIG_FILE, else ~/.aws/config, section "[profile name]" or
 *     "[default]"); keys aws_access_key_id, aws_secret_access_key,
 *     aws_session_token.  A profile that was asked for by name and is not
 *     found is an error, not a reason to fall through to IMDS;
 *  3. IMDSv2 (unless AWS_EC2_METADATA_DISABLED=true): PUT
 *     /latest/api/token with a TTL header, GET the role name from
 *     /latest/meta-data/iam/security-credentials/, GET the role's
 *     credentials JSON.  They are refreshed CMK_AWS_REFRESH_S before their
 *     Expiration.
 *
 * Environment and file credentials do not expire: they are read once and
 * read again when KMS rejects them (cmk_aws_creds_reload()), so a key
 * rotated in the credentials file is picked up by the first request the
 * old key fails.  Whenever the source does not give credentials (the
 * metadata service cannot be reached, the file does not read), the last
 * good ones are kept: KMS decides whether they still work.
 *
 * The secret access key and the session token only ever live in
 * struct cmk_secret; file and JSON buffers that held them are wiped.
 */
#ifndef CMK_AWS_CREDS_H
#define CMK_AWS_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/err.h"
#include "kms/aws/sigv4.h"
#include "kms/http.h"
#include "core/secret.h"

#define CMK_AWS_AKID_MAX	128
#define CMK_AWS_REFRESH_S	300	/* refresh IMDS credentials this early */
#define CMK_AWS_IMDS_DEFAULT	"http://169.254.169.254"
#define CMK_AWS_IMDS_DEFAULT6	"http://[fd00:ec2::254]"
#define CMK_AWS_IMDS_TOKEN_TTL	21600


struct cmk_aws_creds {
	char access_key_id[CMK_AWS_AKID_MAX + 1];
	struct cmk_secret *secret_key;
	struct cmk_secret *session_token;	/* NULL: long-term key */
	time_t expiration;			/* 0: does not expire */
	char source[64];			/* "environment", "profile x", "imds role r" */
};

void cmk_aws_creds_free(struct cmk_aws_creds *c);

enum cmk_aws_cred_mode {
	CMK_AWS_CRED_AUTO,
	CMK_AWS_CRED_ENV,
	CMK_AWS_CRED_PROFILE,
	CMK_AWS_CRED_IMDS,
};

/* The credential chain with its cache (one per provider instance). */
struct cmk_aws_cred_src {
	enum cmk_aws_cred_mode mode;
	char profile[128];
	bool profile_explicit;
	char imds[256];			/* base URL, no trailing slash */
	bool imds_disabled;
	struct cmk_http_opts imds_http;
	struct cmk_aws_creds cur;
	bool have;
	bool stale;			/* refresh before next use */
	unsigned long changes;		/* loads that gave other credentials */
	struct cmk_secret *imds_token;
	time_t imds_token_exp;
};

/*
 * cmk_aws_cred_src_init() - @mode: "auto", "environment", "profile",
 * "imds" (NULL: auto); @profile and @imds may be NULL (defaults, see
 * above; AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the IMDS default).
 */
int cmk_aws_cred_src_init(struct cmk_aws_cred_src *s, const char *mode,
			  const char *profile, const char *imds,
			  struct cmk_err *e);
void cmk_aws_cred_src_free(struct cmk_aws_cred_src *s);

/*
 * cmk_aws_creds_get() - current credentials (owned by @s, valid until the
 * next call).  Failures (only without last good credentials) are local
 * (nothing configured, bad files) or transient (metadata service
 * unreachable).
 */
int cmk_aws_creds_get(struct cmk_aws_cred_src *s, time_t now,
		      const struct cmk_aws_creds **out, struct cmk_err *e);

/*
 * cmk_aws_creds_forget() - wipe the cached credentials and the IMDSv2
 * session token: the next use fetches both again, with no last good
 * credentials to fall back on.
 */
void cmk_aws_creds_forget(struct cmk_aws_cred_src *s);

/* cmk_aws_creds_invalidate() - refetch before the next use (expired token). */
void cmk_aws_creds_invalidate(struct cmk_aws_cred_src *s);

/*
 * cmk_aws_creds_reload() - read the credentials from their source again
 * now, whatever the cache says: KMS rejected the ones in use, and the
 * file, the environment or IMDS may hold rotated ones.  *@changed says
 * whether the source gave other credentials than those in use, i.e.
 * whether one more request can get another answer.  Failures as for
 * cmk_aws_creds_get(), but a transient one (a metadata outage) is
 * returned too: the credentials in use stay, and the caller decides what
 * the rejection is worth (credreload.h).
 */
int cmk_aws_creds_reload(struct cmk_aws_cred_src *s, time_t now, bool *changed,
			 struct cmk_err *e);

/* cmk_aws_imds_get() - GET a metadata path with the IMDSv2 token. */
int cmk_aws_imds_get(struct cmk_aws_cred_src *s, time_t now, const char *path,
		     char **out, struct cmk_err *e);

/* ---- parsers (exposed for unit tests) ---------------------------------- */

/*
 * cmk_aws_profile_parse() - find profile @profile in the text of a shared
 * credentials file (@config_file false: "[name]") or config file (true:
 * "[profile name]", or "[default]" for "default").  Returns 0 with @c
 * filled, -ENOENT if the profile is absent or has no keys, other errors
 * for malformed profiles.  @region (may be NULL) receives the profile's
 * region if it has one.
 */
int cmk_aws_profile_parse(const char *text, size_t len, const char *profile,
			  bool config_file, struct cmk_aws_creds *c,
			  char *region, size_t region_len, struct cmk_err *e);

/* cmk_aws_imds_parse() - the role credentials JSON of IMDS. */
int cmk_aws_imds_parse(const char *json, size_t len, struct cmk_aws_creds *c,
		       struct cmk_err *e);

/* cmk_aws_creds_from_env() - -ENOENT if AWS_ACCESS_KEY_ID is not set. */
int cmk_aws_creds_from_env(struct cmk_aws_creds *c, struct cmk_err *e);

/*
 * cmk_aws_sign() - sign @req with @c for @region/@service at the current
 * time and fill @hh (req->n_headers + 3 entries) with the headers to send,
 * as cmk_sigv4_sign() and cmk_sigv4_headers() do: what every AWS call
 * (KMS, S3, SQS) sends.  *@sig and *@tokz back what @hh points to until
 * the request is sent; then cmk_sigv4_out_free(@sig) (and *@tokz is
 * freed by its owner).  Returns how many headers it filled, or a negative
 * errno with @e filled.
 */
int cmk_aws_sign(const struct cmk_sigv4_request *req, const struct cmk_aws_creds *c,
		 const char *region, const char *service, struct cmk_sigv4_out *sig,
		 struct cmk_nv *hh, struct cmk_secret **tokz, struct cmk_err *e);

#endif /* CMK_AWS_CREDS_H */
