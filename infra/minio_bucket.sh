# The minio-bucket job (POSIX sh), filled in by infra/cloud_services.py (@NAME@ tokens) and run in the
# MinIO image. Keys are only ever "$VAR" references and reach `mc` on stdin (`mc alias set` and
# `mc admin user add` read them there when not given), so no key is in any argv. `mc ... --json` prints
# one object per line when piped (indented on a terminal); the loop parses both, without jq.
set -eu
policy='@POLICY@'
n=0
until printf '%s\n%s\n' "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" | mc alias set s3 @URL@ >/dev/null; do
  n=$((n + 1))
  if [ "$n" -ge 30 ]; then echo 'minio-bucket: MinIO down or refusing telestack:minioRootUser' >&2; exit 1; fi
  sleep 2
done
if [ "$TELESTACK_S3_ACCESS_KEY_ID" = "$MINIO_ROOT_USER" ]; then
  echo 'minio-bucket: telestack:s3AccessKeyId is the MinIO root user; give MinIO a root user of its own' >&2
  exit 1
fi
mc mb --ignore-existing 's3/@BUCKET@'
printf '%s\n' '@POLICY_JSON@' > /tmp/telestack-app-policy.json
mc admin policy create s3 "$policy" /tmp/telestack-app-policy.json >/dev/null
app_user() {  # create the user or update its secret, then attach the stack's policy (both idempotent)
  printf '%s\n%s\n' "$1" "$2" | mc admin user add s3 >/dev/null
  mc admin policy attach s3 "$policy" --user "$1" >/dev/null
  echo "minio-bucket: app user $1 ($3)"
}
app_user "$TELESTACK_S3_ACCESS_KEY_ID" "$TELESTACK_S3_SECRET_ACCESS_KEY" current
prev="${TELESTACK_S3_PREVIOUS_ACCESS_KEY_ID:-}"
if [ -n "$prev" ]; then
  app_user "$prev" "$TELESTACK_S3_PREVIOUS_SECRET_ACCESS_KEY" 'previous, until rotate-secrets --finish'
fi
users=$(mc admin user list s3 --json)
user='' attached=''
while IFS= read -r line; do
  case $line in *'"accessKey"'*) user=${line#*'"accessKey"'}; user=${user#*'"'}; user=${user%%'"'*} ;; esac
  case $line in *'"policyName"'*)
    attached=${line#*'"policyName"'}; attached=${attached#*'"'}; attached=${attached%%'"'*} ;;
  esac
  case $line in *'}'*)
    if [ -n "$user" ] && [ "$attached" = "$policy" ] && [ "$user" != "$TELESTACK_S3_ACCESS_KEY_ID" ] \
        && [ "$user" != "$prev" ]; then
      mc admin user rm s3 "$user" >/dev/null
      echo "minio-bucket: removed app user $user (rotated out)"
    fi
    user='' attached='' ;;
  esac
done <<EOF
$users
EOF
