// SPDX-License-Identifier: GPL-2.0
/*
 * random.c - getrandom() until the buffer is full (see random.h).
 */
#include "core/random.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

int cmk_random_fill(void *buf, size_t len, const char *what, struct cmk_err *e)
{
	unsigned char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom(p + done, len - done, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int err = n < 0 ? errno : EIO;

			return cmk_errf(e, -err, "%s: getrandom failed: %s", what,
					n < 0 ? strerror(err) : "short read");
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Why a reseed and not our own bytes: OpenSSL draws from its DRBGs inside
 * calls we do not control (EC key generation, the ECDSA nonce, TLS
 * client randoms and key shares); a reseed with prediction resistance
 * makes every one of them depend on fresh OS entropy, in one place.
 * The public DRBG serves RAND_bytes() (TLS), the private one
 * RAND_priv_bytes() (keys, ECDSA nonces); both are per thread, so the
 * caller's thread is the one that is reseeded directly.  Prediction
 * resistance reseeds their parent, the primary DRBG, first: the other
 * threads' DRBGs, children of the same primary, reseed from it on their
 * next draw, so they follow too.
 */
int cmk_random_reseed_openssl(const char *what, struct cmk_err *e)
{
	EVP_RAND_CTX *pub = RAND_get0_public(NULL);
	EVP_RAND_CTX *priv = RAND_get0_private(NULL);

	if (!pub || !priv ||
	    EVP_RAND_reseed(pub, 1, NULL, 0, NULL, 0) != 1 ||
	    EVP_RAND_reseed(priv, 1, NULL, 0, NULL, 0) != 1)
		return cmk_errf(e, -EIO,
				"%s: OpenSSL could not reseed its random generator from the OS; nothing was drawn from it",
				what);
	return 0;
}
