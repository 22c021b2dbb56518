/* SPDX-License-Identifier: GPL-2.0 */
/*
 * crc32c.h - CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum Google Cloud KMS uses for its integrity fields (plaintextCrc32c,
 * ciphertextCrc32c, additionalAuthenticatedDataCrc32c).  A table-driven
 * software implementation; the test vectors are those of RFC 3720 B.4.
 * It detects corruption in transit, it is not a MAC.
 */
#ifndef CMK_CRC32C_H
#define CMK_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * cmk_crc32c() - continue CRC-32C @crc (0 to start) over @len bytes.
 * cmk_crc32c(0, "123456789", 9) == 0xE3069283.
 */
uint32_t cmk_crc32c(uint32_t crc, const void *buf, size_t len);

#endif /* CMK_CRC32C_H */
