variable "region" {
  description = "AWS region."
  type        = string
  default     = "eu-west-1"
}

variable "vpc_id" {
  description = "VPC of the workers."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with a NAT gateway) for the workers."
  type        = list(string)
}

variable "release_bucket" {
  description = "Bucket holding the worker release."
  type        = string
}

variable "release_key" {
  description = "Key of the worker release archive."
  type        = string
}

variable "release_sha256" {
  description = "SHA-256 of the worker release archive."
  type        = string
}

variable "control_plane_url" {
  description = "https://host:port of the control plane."
  type        = string
}

variable "control_plane_ca_file" {
  description = "Path to the PEM certificate of the CA that signed the control plane's certificate."
  type        = string
}

variable "control_plane_cidr_blocks" {
  description = "Where the control plane is."
  type        = list(string)
}

variable "source_postgres_cidr_blocks" {
  description = "Where the PostgreSQL sources are."
  type        = list(string)
}

variable "starrocks_cidr_blocks" {
  description = "Where StarRocks is."
  type        = list(string)
}
