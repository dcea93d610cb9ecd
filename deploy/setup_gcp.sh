#!/usr/bin/env bash
# Sets up a Google Cloud project for reviewscore's nightly Dataflow job: the APIs, the bucket, the
# Artifact Registry repository, the service accounts, and every role each identity needs, exactly
# those of deploy/iam_roles.txt (docs/production.md, "Step by step", has the table).
#
# Dry run by default: prints every gcloud command it would run, in order, and changes nothing.
# With --apply it runs them, echoing each. Running it again is safe: what exists is described, not
# created twice, and a role binding that is already there is left as it is.
#
#   deploy/setup_gcp.sh --project ID --region REGION --bucket NAME [--network NAME]
#       [--subnetwork regions/REGION/subnetworks/NAME] [--airflow-sa EMAIL] [--build-sa EMAIL] [--apply]
#
# --network/--subnetwork: the VPC the launcher VM and the workers join. Without them Dataflow uses the
#   network named "default", which a project may not have (then the launcher never starts); the script
#   checks the one that will be used exists. Pass the same values to `make template`.
# --airflow-sa: the account Airflow runs as (Cloud Composer: the environment's service account); by
#   default the script creates reviewscore-airflow@PROJECT for an Airflow you run yourself.
# --build-sa: the account Cloud Build runs builds as; by default the project's own, asked of Cloud Build.
# Exit codes: 0 done (or printed), 2 a usage error (one line on stderr), else gcloud's.
set -euo pipefail

ROLES_FILE="$(dirname "$0")/iam_roles.txt"
REPOSITORY=reviewscore
WORKER_NAME=reviewscore
AIRFLOW_NAME=reviewscore-airflow
# The values the documentation's examples use: left in place, they would set up someone else's names.
PLACEHOLDERS=" my-project my-bucket my-reviewscore-bucket PROJECT BUCKET "

usage_error() {
    echo "setup_gcp.sh: $1 (deploy/setup_gcp.sh --help lists the options)" >&2
    exit 2
}

project="" region="" bucket="" network="" subnetwork="" airflow_sa="" build_sa="" apply=false
while [ $# -gt 0 ]; do
    case "$1" in
        --apply) apply=true; shift; continue ;;
        --project | --region | --bucket | --network | --subnetwork | --airflow-sa | --build-sa)
            [ $# -ge 2 ] || usage_error "$1 needs a value"
            value="$2" ;;
        --project=* | --region=* | --bucket=* | --network=* | --subnetwork=* | --airflow-sa=* | --build-sa=*)
            value="${1#*=}" ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) usage_error "unknown argument '$1'" ;;
    esac
    case "${1%%=*}" in
        --project) project="$value" ;;
        --region) region="$value" ;;
        --bucket) bucket="$value" ;;
        --network) network="$value" ;;
        --subnetwork) subnetwork="$value" ;;
        --airflow-sa) airflow_sa="$value" ;;
        --build-sa) build_sa="$value" ;;
    esac
    if [[ "$1" == *=* ]]; then shift; else shift 2; fi
done

# Every value ends up in a command line: each is checked against what Google accepts for it, which
# also keeps quotes, spaces and $ out of the commands this script prints and runs.
check() { # NAME VALUE PATTERN WHAT
    [ -n "$2" ] || usage_error "$1 is required"
    [[ " $PLACEHOLDERS " != *" $2 "* ]] || usage_error "$1 '$2' is the documentation's example: give your own"
    [[ "$2" =~ $3 ]] || usage_error "$1 '$2' is not $4"
}
check --project "$project" '^[a-z][a-z0-9-]{4,28}[a-z0-9]$' "a project ID (6 to 30 lowercase letters, digits, hyphens)"
check --region "$region" '^[a-z]+-[a-z]+[0-9]+$' "a region such as europe-west1"
check --bucket "$bucket" '^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$' "a bucket name (3 to 63 lowercase letters, digits, -, _ and .)"
[ -z "$network" ] || check --network "$network" '^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$' "a VPC network name"
[ -z "$subnetwork" ] || check --subnetwork "$subnetwork" \
    "^(https://www\.googleapis\.com/compute/v1/projects/[a-z0-9-]+/)?regions/$region/subnetworks/[a-z]([a-z0-9-]{0,61}[a-z0-9])?$" \
    "regions/$region/subnetworks/NAME (or its full URL, for a Shared VPC)"
email='^[a-z0-9][a-z0-9.-]*@[a-z0-9][a-z0-9.-]*\.[a-z]+$'
[ -z "$airflow_sa" ] || check --airflow-sa "$airflow_sa" "$email" "a service account's email"
[ -z "$build_sa" ] || check --build-sa "$build_sa" "$email" "a service account's email"
[ -f "$ROLES_FILE" ] || usage_error "$ROLES_FILE is missing: run the script from a reviewscore checkout"

worker_sa="$WORKER_NAME@$project.iam.gserviceaccount.com"
create_airflow_sa=false
if [ -z "$airflow_sa" ]; then
    airflow_sa="$AIRFLOW_NAME@$project.iam.gserviceaccount.com"
    create_airflow_sa=true
fi

# One command: printed; with --apply also run. Values were checked above, so the printed line is
# exactly what runs (eval), and a dry run's output can be read, or pasted, as the script it stands for.
step() {
    if $apply; then
        printf '+ %s\n' "$1"
        eval "$1"
    else
        printf '%s\n' "$1"
    fi
}

# A role binding: gcloud keeps one binding per member and role, so adding it again changes nothing.
# A service account created a moment ago can take a minute to be seen by IAM: retried, then failed.
grant() {
    if ! $apply; then
        step "$1"
        return
    fi
    printf '+ %s\n' "$1"
    for attempt in 1 2 3 4 5 6; do
        if eval "$1 >/dev/null"; then
            return
        fi
        [ "$attempt" -lt 6 ] || exit 1
        echo "setup_gcp.sh: retrying in 10 s (a new service account may not be visible to IAM yet)" >&2
        sleep 10
    done
}

if $apply; then
    echo "# Setting up project $project (region $region, bucket gs://$bucket)."
else
    echo "# Dry run: the commands deploy/setup_gcp.sh --apply would run for project $project. Nothing was changed."
fi

P="--project=$project"
step "gcloud services enable dataflow.googleapis.com compute.googleapis.com storage.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com logging.googleapis.com iam.googleapis.com $P"

# The network the launcher VM and the workers join must exist: without one named "default" Dataflow
# cannot start the launcher, and the job fails only after the launch.
no_network="echo 'setup_gcp.sh: no network or subnetwork of that name in the project: pass --network and --subnetwork' >&2; exit 2"
step "gcloud compute networks describe ${network:-default} $P --format='value(name)' || { $no_network; }"
if [ -n "$subnetwork" ]; then
    step "gcloud compute networks subnets describe ${subnetwork##*/} --region=$region $P --format='value(name)' || { $no_network; }"
fi

step "gcloud storage buckets describe gs://$bucket $P --format='value(name)' >/dev/null 2>&1 || gcloud storage buckets create gs://$bucket $P --location=$region --uniform-bucket-level-access"
step "gcloud artifacts repositories describe $REPOSITORY --location=$region $P --format='value(name)' >/dev/null 2>&1 || gcloud artifacts repositories create $REPOSITORY --repository-format=docker --location=$region $P"
step "gcloud iam service-accounts describe $worker_sa $P --format='value(email)' >/dev/null 2>&1 || gcloud iam service-accounts create $WORKER_NAME $P --display-name='reviewscore template launcher and Dataflow workers'"
if $create_airflow_sa; then
    step "gcloud iam service-accounts describe $airflow_sa $P --format='value(email)' >/dev/null 2>&1 || gcloud iam service-accounts create $AIRFLOW_NAME $P --display-name='Airflow, launching reviewscore'"
fi
if [ -n "$build_sa" ]; then
    build_member="serviceAccount:$build_sa"
else
    # Cloud Build names its account as projects/PROJECT/serviceAccounts/EMAIL: the email is the last part.
    step "BUILD_SA=\$(gcloud builds get-default-service-account $P --format='value(serviceAccountEmail)'); BUILD_SA=\${BUILD_SA##*/}"
    build_member="serviceAccount:\$BUILD_SA"
fi

# The roles file's columns hold no inner spaces but the last, so removing every blank trims them.
while IFS='|' read -r identity scope role _; do
    identity="${identity//[[:space:]]/}" scope="${scope//[[:space:]]/}" role="${role//[[:space:]]/}"
    if [ -z "$identity" ] || [[ "$identity" == \#* ]]; then
        continue
    fi
    case "$identity" in
        airflow) member="serviceAccount:$airflow_sa" ;;
        worker) member="serviceAccount:$worker_sa" ;;
        build) member="$build_member" ;;
        *) usage_error "$ROLES_FILE: unknown identity '$identity'" ;;
    esac
    case "$scope" in
        project) grant "gcloud projects add-iam-policy-binding $project --member=$member --role=$role --condition=None --quiet" ;;
        bucket) grant "gcloud storage buckets add-iam-policy-binding gs://$bucket --member=$member --role=$role $P" ;;
        repository) grant "gcloud artifacts repositories add-iam-policy-binding $REPOSITORY --location=$region --member=$member --role=$role $P" ;;
        worker-account) grant "gcloud iam service-accounts add-iam-policy-binding $worker_sa --member=$member --role=$role $P" ;;
        *) usage_error "$ROLES_FILE: unknown scope '$scope' for $identity's $role" ;;
    esac
done <"$ROLES_FILE"

next="make template PROJECT=$project REGION=$region BUCKET=$bucket SERVICE_ACCOUNT=$worker_sa"
[ -z "$network" ] || next="$next NETWORK=$network"
[ -z "$subnetwork" ] || next="$next SUBNETWORK=$subnetwork"
echo "# Next: make image PROJECT=$project REGION=$region BUCKET=$bucket, then $next"
echo "# Airflow's connection runs as $airflow_sa; the jobs run as $worker_sa."
