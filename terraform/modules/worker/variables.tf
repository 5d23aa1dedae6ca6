variable "name" {
  description = "Name of this worker fleet; prefixes every resource (Auto Scaling group, role, log group, ...)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC the workers run in."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the workers (no public IP is ever assigned; they reach AWS APIs through NAT or VPC endpoints)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "subnet_ids must hold at least one subnet id (subnet-...)."
  }
}

variable "ami_id" {
  description = "AMI for the workers: Amazon Linux 2023 or another systemd distribution with the AWS CLI v2, curl and sha256sum."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must look like ami-0123456789abcdef0."
  }
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
  default     = "m7i.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must look like m7i.large."
  }
}

variable "root_device_name" {
  description = "Device name of the AMI's root volume (/dev/xvda on Amazon Linux)."
  type        = string
  default     = "/dev/xvda"

  validation {
    condition     = can(regex("^/dev/[a-z0-9]+$", var.root_device_name))
    error_message = "root_device_name must be a device path such as /dev/xvda."
  }
}

variable "root_volume_size_gb" {
  description = "Size of the encrypted gp3 root volume in GiB."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size_gb >= 8 && var.root_volume_size_gb <= 1024 && floor(var.root_volume_size_gb) == var.root_volume_size_gb
    error_message = "root_volume_size_gb must be a whole number between 8 and 1024."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the EBS volumes and the log group. When null, the module creates one with yearly rotation enabled."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$", var.kms_key_arn))
    error_message = "kms_key_arn must be null or a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/UUID); aliases are not accepted."
  }
}

variable "min_size" {
  description = "Minimum number of workers."
  type        = number
  default     = 1

  validation {
    condition     = var.min_size >= 0 && var.min_size <= 100 && floor(var.min_size) == var.min_size
    error_message = "min_size must be a whole number between 0 and 100."
  }
}

variable "max_size" {
  description = "Maximum number of workers (at least min_size; one more than desired leaves room for instance refresh)."
  type        = number
  default     = 3

  validation {
    condition     = var.max_size >= 1 && var.max_size <= 100 && floor(var.max_size) == var.max_size
    error_message = "max_size must be a whole number between 1 and 100."
  }
}

variable "desired_capacity" {
  description = "Number of workers to run, between min_size and max_size."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_capacity >= 0 && var.desired_capacity <= 100 && floor(var.desired_capacity) == var.desired_capacity
    error_message = "desired_capacity must be a whole number between 0 and 100."
  }
}

variable "release_bucket" {
  description = "S3 bucket holding the worker release archive."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.release_bucket))
    error_message = "release_bucket must be a valid S3 bucket name."
  }
}

variable "release_key" {
  description = "Object key of the worker release archive (a .tar.gz made by deploy/build-release.sh)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_./-]+\\.tar\\.gz$", var.release_key))
    error_message = "release_key must be an object key ending in .tar.gz, without wildcards."
  }
}

variable "release_sha256" {
  description = "SHA-256 of the release archive (64 lowercase hex characters). Boot stops if the download doesn't match."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.release_sha256))
    error_message = "release_sha256 must be 64 lowercase hexadecimal characters."
  }
}

variable "bootstrap_token_parameter_name" {
  description = "Name of the SSM Parameter Store SecureString holding the worker bootstrap token (read at boot, never placed in user data)."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]+$", var.bootstrap_token_parameter_name)) && length(var.bootstrap_token_parameter_name) <= 1011
    error_message = "bootstrap_token_parameter_name must be a full parameter path starting with /, without wildcards."
  }
}

variable "bootstrap_token_kms_key_arn" {
  description = "KMS key that encrypts the bootstrap-token SecureString, when it is a customer-managed key; the role gets kms:Decrypt on it through SSM only. Null for the AWS-managed aws/ssm key."
  type        = string
  default     = null

  validation {
    condition     = var.bootstrap_token_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]{36}$", var.bootstrap_token_kms_key_arn))
    error_message = "bootstrap_token_kms_key_arn must be null or a KMS key ARN."
  }
}

variable "control_plane_url" {
  description = "The control plane workers register with: https://host:port."
  type        = string

  validation {
    condition     = can(regex("^https://[A-Za-z0-9.-]+:[0-9]{1,5}$", var.control_plane_url))
    error_message = "control_plane_url must be https://host:port, with no path."
  }
}

variable "control_plane_ca_pem" {
  description = "PEM certificate of the CA that signed the control plane's TLS certificate (public; written to /etc/sluice/ca.crt)."
  type        = string

  validation {
    condition     = can(regex("-----BEGIN CERTIFICATE-----", var.control_plane_ca_pem)) && !can(regex("PRIVATE KEY", var.control_plane_ca_pem))
    error_message = "control_plane_ca_pem must be a PEM certificate, and must not contain a private key."
  }
}

variable "control_plane_port" {
  description = "TCP port of the control plane."
  type        = number
  default     = 8443

  validation {
    condition     = var.control_plane_port >= 1 && var.control_plane_port <= 65535
    error_message = "control_plane_port must be a TCP port (1-65535)."
  }
}

variable "control_plane_cidr_blocks" {
  description = "Where the control plane is; the only destinations allowed on control_plane_port."
  type        = list(string)

  validation {
    condition     = length(var.control_plane_cidr_blocks) > 0 && alltrue([for c in var.control_plane_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "control_plane_cidr_blocks must list at least one IPv4 CIDR, and not 0.0.0.0/0."
  }
}

variable "source_postgres_port" {
  description = "TCP port of the PostgreSQL sources."
  type        = number
  default     = 5432

  validation {
    condition     = var.source_postgres_port >= 1 && var.source_postgres_port <= 65535
    error_message = "source_postgres_port must be a TCP port (1-65535)."
  }
}

variable "source_postgres_cidr_blocks" {
  description = "Where the PostgreSQL sources are; the only destinations allowed on source_postgres_port."
  type        = list(string)

  validation {
    condition     = length(var.source_postgres_cidr_blocks) > 0 && alltrue([for c in var.source_postgres_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "source_postgres_cidr_blocks must list at least one IPv4 CIDR, and not 0.0.0.0/0."
  }
}

variable "starrocks_ports" {
  description = "StarRocks ports workers use: FE HTTP (Stream Load), FE MySQL protocol, BE HTTP (the Stream Load redirect target)."
  type        = list(number)
  default     = [8030, 9030, 8040]

  validation {
    condition     = length(var.starrocks_ports) > 0 && alltrue([for p in var.starrocks_ports : p >= 1 && p <= 65535])
    error_message = "starrocks_ports must list TCP ports (1-65535)."
  }
}

variable "starrocks_cidr_blocks" {
  description = "Where the StarRocks frontends and backends are; the only destinations allowed on starrocks_ports."
  type        = list(string)

  validation {
    condition     = length(var.starrocks_cidr_blocks) > 0 && alltrue([for c in var.starrocks_cidr_blocks : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "starrocks_cidr_blocks must list at least one IPv4 CIDR, and not 0.0.0.0/0."
  }
}

variable "https_egress_cidr_blocks" {
  description = "Destinations allowed on 443 for S3, SSM, KMS, CloudWatch Logs and Auto Scaling (e.g. VPC interface endpoint subnets, or 0.0.0.0/0 behind a NAT). At least one of this or https_egress_prefix_list_ids is required."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.https_egress_cidr_blocks : can(cidrhost(c, 0))])
    error_message = "https_egress_cidr_blocks must hold IPv4 CIDRs."
  }
}

variable "https_egress_prefix_list_ids" {
  description = "Managed prefix lists allowed on 443 (e.g. the S3 gateway endpoint's pl-...)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.https_egress_prefix_list_ids : can(regex("^pl-[0-9a-f]{8,17}$", id))])
    error_message = "https_egress_prefix_list_ids must hold prefix list ids (pl-...)."
  }
}

variable "drain_timeout_seconds" {
  description = "How long a terminating worker may drain (finish its batch, hand back its lease) before the instance goes: the lifecycle hook's heartbeat timeout and the unit's stop timeout."
  type        = number
  default     = 300

  validation {
    condition     = var.drain_timeout_seconds >= 30 && var.drain_timeout_seconds <= 7200
    error_message = "drain_timeout_seconds must be between 30 and 7200."
  }
}

variable "log_level" {
  description = "SLUICE_LOG_LEVEL of the workers."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be one of trace, debug, info, warn, error."
  }
}

variable "log_retention_days" {
  description = "Retention of the CloudWatch log group."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : length(k) <= 128 && !startswith(lower(k), "aws:")])
    error_message = "tag keys must be at most 128 characters and must not start with aws:."
  }
}
