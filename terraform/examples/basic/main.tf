# Two Sluice workers in private subnets of an existing VPC, reaching the control plane, one PostgreSQL
# source and a StarRocks cluster inside the VPC, and AWS APIs through a NAT gateway.
#
# Before `terraform apply`:
#   - upload the release made by deploy/build-release.sh to s3://<release_bucket>/<release_key> and pass
#     the SHA-256 it printed;
#   - store a bootstrap token (`sluice token create --ttl 15m --json`) as a SecureString:
#       aws ssm put-parameter --type SecureString --name /sluice/prod/bootstrap-token --value file://token
#     Tokens are single use: write a fresh one before each new worker registers.

provider "aws" {
  region = var.region
}

data "aws_ssm_parameter" "al2023" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

module "worker" {
  source = "../../modules/worker"

  name       = "sluice-prod"
  vpc_id     = var.vpc_id
  subnet_ids = var.private_subnet_ids
  ami_id     = nonsensitive(data.aws_ssm_parameter.al2023.value)

  release_bucket = var.release_bucket
  release_key    = var.release_key
  release_sha256 = var.release_sha256

  bootstrap_token_parameter_name = "/sluice/prod/bootstrap-token"

  control_plane_url         = var.control_plane_url
  control_plane_ca_pem      = file(var.control_plane_ca_file)
  control_plane_cidr_blocks = var.control_plane_cidr_blocks

  source_postgres_cidr_blocks = var.source_postgres_cidr_blocks
  starrocks_cidr_blocks       = var.starrocks_cidr_blocks
  https_egress_cidr_blocks    = ["0.0.0.0/0"]

  min_size         = 1
  desired_capacity = 2
  max_size         = 3

  tags = {
    environment = "prod"
  }
}
