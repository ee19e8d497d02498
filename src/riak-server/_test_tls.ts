/**
 * A self-signed certificate for tests of StartTls (CN 127.0.0.1, valid until 2126). Never used
 * outside tests; clients must not verify it (rejectUnauthorized: false).
 *
 * @module
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

/** The PEM certificate. */
export const TEST_CERT = `-----BEGIN CERTIFICATE-----
MIIDCzCCAfOgAwIBAgIUXHKjmmPVceWjGSobbTy6bAJP2bIwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyNTAwMjkwM1oYDzIxMjYx
MTAxMDAyOTAzWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQDgDMeSkb0uRHVihsN4y/ED4Cwo4tF7RZNdpejxG+r1
C8de7z5Nr8wvuT3nleA3HRHoQRXXfXy/j4j6k2KbTjB8eCj6Dn40yC0AQxRmfyFT
QG9yZxU4knbJFkQ/GjwFjVEvGiszE+ujRycKtNRf0mlSVPIZu/+7BSaNozDDOW+S
zzUodnBvlUjsVHkFAl+p4PCU1+v9zqe0dfnE5ktfsc6jUqhaydpa04+P6qogAoeh
uIIbgu2QgVW9XseAbGbxUp4XwtwjxGmYBlqMo3scmSBrKiQ8A/stZofqmdDJtfrY
cFJ9CNx87NdiuHbJfiEwuPC/s3BAuWNG9VmOd8b1bUu9AgMBAAGjUzBRMB0GA1Ud
DgQWBBQmpwt2GkNlgAjB6rQ1iIYVmepQGzAfBgNVHSMEGDAWgBQmpwt2GkNlgAjB
6rQ1iIYVmepQGzAPBgNVHRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBCwUAA4IBAQAs
LRBSgBkr78V+Ga2srr8KkooAvchm0odFcy5KT77/VcaeRbY+bBSbid7FlwYjVOIu
UDIoeSZf/tNh6zqsw63j7wL45NwcmtmQe8I+kq/Q/1TBbtCblpU2wDFToquOF6o0
JZ+IBVgmKELYzsXwogxd/5WLVI5JTprsXE34SVTCcq8FnHsvBHrY4VseBWE6EleH
hyqTXrP1vP4I+cvx5NEP9e0UqZcOkNIPKcB6OBXupgDwypcTDMmwqEiC0Bhu2WRo
TQsJ1WSBZ8ay1zjQ6e2Gxx8Jub8Q4pa2TykkPu6P0LJbTECp5t4LrMb8arFTXAuw
D+vp10baiDaEatFeYXOb
-----END CERTIFICATE-----
`;

/** The PEM private key of {@link TEST_CERT}. */
export const TEST_KEY = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDgDMeSkb0uRHVi
hsN4y/ED4Cwo4tF7RZNdpejxG+r1C8de7z5Nr8wvuT3nleA3HRHoQRXXfXy/j4j6
k2KbTjB8eCj6Dn40yC0AQxRmfyFTQG9yZxU4knbJFkQ/GjwFjVEvGiszE+ujRycK
tNRf0mlSVPIZu/+7BSaNozDDOW+SzzUodnBvlUjsVHkFAl+p4PCU1+v9zqe0dfnE
5ktfsc6jUqhaydpa04+P6qogAoehuIIbgu2QgVW9XseAbGbxUp4XwtwjxGmYBlqM
o3scmSBrKiQ8A/stZofqmdDJtfrYcFJ9CNx87NdiuHbJfiEwuPC/s3BAuWNG9VmO
d8b1bUu9AgMBAAECgf91IOPfO/wqs/SqDXR4h3r4YQ60+97dEwJ3csTUnO5i15ri
29qLwoZ8bIXFtr9WELHL5Dqxl74fvGoKlVfM2T4qfqbtaFDnnGk/jydFw4XTKrHD
R8tQR+wm3qfPABK2KarHdRF1zR7jEnor9Ae9ZcKpyBQeX/978LVhq8P89jSItSWC
QusZ5w0hftOhy2Dlz7zwINlUcosuGIsItVpPJMQUXDQBuChNoB7sG3m5dXOHqzJL
xQaF7m4KYvEAu9nIFe0Q5sp+jX4Fhx8BSTJAzqNkzQ3u4QWM9JngQgddRAHkFVbM
/xQEPovFg3EACE0XcJjnvCOCh/tHzF7Hwm3kaW8CgYEA76wsoWg2ZxwlNLXyGuRr
a7eht0TcamRt4iXM9zwIgU9XrcvLu3eNQmnitnxs2hX/7SoQaqva7zZllUu2DCbt
WRoZvoJdH8v8OiKf5psXC+qKeaBqEhV5L0YjRenI2MpsZKmZz1raQTULuX6kUFpi
AsoCzRWFuXTo1m8uSpS44BcCgYEA71Amj4ffYy8ZWb5p1SQZcZPS0+LHwvd0sk/f
hdbWHB/GJ3IhMadvko57PFRT/KF9K3yCywVAJ3UnI28Jhh5c5vjjuwARjjKn+w0Z
1ILG1K0NwMuMm3CZNeVzN8BwaDYC2fZ/irec0/8EANpc599xWQ49dwY23iVb7NCc
7jgzo0sCgYEAnlueqY8X0w0PsEI/k3E1YNjWKyd+k3WD/RaI1Rp/bCEmh5jOJjGZ
zjX0LCsOKRK8JNHUQwcGA2RnvjtmL6VQ0byjIfM04JuBLlBOYqo6kg8IK9DIBObX
SVsIV1te747gC6rcC9u1tbv84TVCEC2H8NvU+fisgJs0dOrFJVYayUUCgYEAnQzr
kWwotM2XBGdKyv661+ecB0Oftxpwcgiq9wmLT7+magKjOBPay8JHq8rnpzZPj7dR
mmyisoJWohFfna3VaBrUUMd1ve0OgloRpn4AgFflW635Y5UcZttipqba3fj8HBCB
mQZwnEuSVAD50Y24tCn9OlxQq662yg4JvugRM0sCgYEA6P+Z7X7oZTiNdC8zexxc
LAk6M1OZlVpQ/EQ0OuAU1S4iGGqFO9+35YFjdX9QmNDSDswXBlgPlvKdyqg0qdy6
aM4z1zbUHAoPnYKQO3Dcz4o6GcbXzMyCpQns3RBe/svmmesDO5tcEgc8q2f8p16q
LXWN0cyUo4DF9l2LX58BCgI=
-----END PRIVATE KEY-----
`;

/** Writes `cert.pem` and `key.pem` into `dir`; returns their paths. */
export function writeTestCertificate(dir: string): { certFile: string; keyFile: string } {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  writeFileSync(certFile, TEST_CERT);
  writeFileSync(keyFile, TEST_KEY, { mode: 0o600 });
  return { certFile, keyFile };
}
