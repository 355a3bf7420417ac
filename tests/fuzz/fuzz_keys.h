/*
 * Test keys of the token fuzzers, written by tests/fuzz/gen_corpus.py
 * with the seeds of tests/data/fuzz/jws/ they signed. They guard
 * nothing: never use them outside the fuzzers.
 */
#ifndef EA_TESTS_FUZZ_KEYS_H
#define EA_TESTS_FUZZ_KEYS_H

#define FUZZ_ISS    "https://auth.example.com"
#define FUZZ_AUD    "email-api"
#define FUZZ_NOW    1700000000LL
#define FUZZ_EC_KID "jYNnwtmHqa8OytdmXyfpvq8HwXX0_1TVk0sv9yBN-Do"

/* clang-format off */
static const char fuzz_jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"VSAwm-AGvGnbu-JkhUwCuASu"
    "7OcwGaUK7msy5ZSRaP4\",\"y\":\"8BwOvCh5b6xZX8sRV6xTiJS_rcTx6xr9L2ahLn"
    "H28MM\",\"kid\":\"jYNnwtmHqa8OytdmXyfpvq8HwXX0_1TVk0sv9yBN-Do\",\"alg\""
    ":\"ES256\",\"use\":\"sig\"},{\"kty\":\"RSA\",\"n\":\"i4WSWF3LAm1bWSYPKtpjsoyE"
    "1KLkFsDyKOv48B0BxZwpUkS7yfuG07VowtOW1z1v1k1Gk4fRpc4RZcXsGRO5S7Lj"
    "ePGFmZidi4TbBOuItjTD2j_d_xlkdgctq8oKviKWNsIzc9r2oc9HDnTHxQxfym4K"
    "23oBRU7GXlkRVt8uxBdp_SL6djPW_uJF0CqWTCYQzcuYW6l-QCMrU9_hTtWZRouF"
    "GgZUL9EkaWNjjEdMqT1HMPs1n4BXL2OpTpKdB4VYeTaujyq_ADIoYTG7MEL8UAjY"
    "Yj32jB3sBhZ_RVo6w7ykBaR3J2VjfV4jdFsLUYTxFnAyH0AfJkffo0-3rAgTbw\","
    "\"e\":\"AQAB\",\"kid\":\"rsa.fuzz\",\"alg\":\"RS256\",\"use\":\"sig\"}]}";

static const char fuzz_ec_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgHrnZV+FPZ7nvp9Fr\n"
    "fTcwhEua4bt5n5lGOy8UBoBefpChRANCAARVIDCb4Aa8adu74mSFTAK4BK7s5zAZ\n"
    "pQruazLllJFo/vAcDrwoeW+sWV/LEVesU4iUv63E8esa/S9moS5x9vDD\n"
    "-----END PRIVATE KEY-----\n";

/* clang-format on */

#endif
