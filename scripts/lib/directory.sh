# Shared by the load scripts: a directory user signing with a long-term access key. Source it, then:
#   key_user_role_toml ACCOUNT ROLE   prints a [[roles]] entry that the account's principals
#                                     (its directory users, with a policy allowing it) may assume
#   key_user RG CONFIG USER ROLE_ARN KEY_JSON
#                                     with the CLI of binary RG on CONFIG (before the server starts
#                                     on sled, which allows one process): creates USER, gives it a
#                                     policy allowing sts:AssumeRole on ROLE_ARN and an access key,
#                                     written as the CLI's JSON to KEY_JSON
# scripts/lib/sign.py signs requests with that key.

key_user_role_toml() {
  cat <<TOML
[[roles]]
account = "$1"
name = "$2"
trust_policy = '''
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
  "Principal": {"AWS": "arn:aws:iam::$1:root"}, "Action": "sts:AssumeRole"}]}
'''
TOML
}

key_user() {
  local rg=$1 cfg=$2 user=$3 role=$4 out=$5
  local policy="$out.policy.json"
  printf '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"%s"}]}' \
    "$role" >"$policy"
  "$rg" --config "$cfg" user create "$user" >/dev/null
  "$rg" --config "$cfg" user put-policy "$user" assume --file "$policy" >/dev/null
  "$rg" --config "$cfg" access-key create "$user" >"$out"
}
