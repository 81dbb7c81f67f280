// The AWS SDK for JavaScript v3 against rolegate's STS: credentials from one of the SDK's own
// providers, then GetCallerIdentity signed with them. Prints one JSON line and exits 0, or prints
// the SDK's error as JSON and exits 2.
//
//   node js-sdk-sts.mjs token-file   fromTokenFile(): AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN,
//                                    AWS_ROLE_SESSION_NAME, AWS_ENDPOINT_URL_STS, AWS_REGION
//   node js-sdk-sts.mjs web-token    fromWebToken() with the token read from the file
//                                    AWS_WEB_IDENTITY_TOKEN_FILE names, the role and session of the
//                                    same variables, and the endpoint given as client config
//   node js-sdk-sts.mjs sso          fromSSO(): AWS_PROFILE in AWS_CONFIG_FILE, the token cache in
//                                    ~/.aws/sso/cache; the SSO, SSO-OIDC and STS endpoints and the
//                                    region from the profile (its services section)

import { readFileSync } from "node:fs";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { fromSSO, fromTokenFile, fromWebToken } from "@aws-sdk/credential-providers";

const mode = process.argv[2];
const env = process.env;

function provider() {
  switch (mode) {
    case "token-file":
      return fromTokenFile();
    case "web-token":
      return fromWebToken({
        roleArn: env.AWS_ROLE_ARN,
        roleSessionName: env.AWS_ROLE_SESSION_NAME,
        webIdentityToken: readFileSync(env.AWS_WEB_IDENTITY_TOKEN_FILE, "utf8").trim(),
        clientConfig: { region: env.AWS_REGION, endpoint: env.AWS_ENDPOINT_URL_STS },
      });
    case "sso":
      return fromSSO({ profile: env.AWS_PROFILE });
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

function errorJson(err) {
  return {
    error: {
      name: err?.name,
      code: err?.Code ?? err?.name,
      message: err?.message,
      status: err?.$metadata?.httpStatusCode,
      requestId: err?.$metadata?.requestId,
    },
  };
}

try {
  const sts = new STSClient({ region: env.AWS_REGION, credentials: provider(), maxAttempts: 1 });
  const who = await sts.send(new GetCallerIdentityCommand({}));
  // The client keeps what the provider gave it: the credentials that signed the call.
  const resolved = await sts.config.credentials();
  console.log(
    JSON.stringify({
      arn: who.Arn,
      account: who.Account,
      userId: who.UserId,
      accessKeyId: resolved.accessKeyId,
      hasSessionToken: Boolean(resolved.sessionToken),
      expiration: resolved.expiration?.toISOString() ?? null,
      requestId: who.$metadata.requestId,
    }),
  );
} catch (err) {
  console.log(JSON.stringify(errorJson(err)));
  process.exit(2);
}
