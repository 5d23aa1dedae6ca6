# Sluice workers on EC2: an Auto Scaling group of private instances on encrypted EBS, with no inbound
# access, egress only where a worker must go, and an instance role that can read one release object, one
# SSM parameter and write one log group.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  dns_suffix = data.aws_partition.current.dns_suffix
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  create_kms_key = var.kms_key_arn == null
  kms_key_arn    = local.create_kms_key ? aws_kms_key.this[0].arn : var.kms_key_arn

  log_group_name      = "/sluice/${var.name}/worker"
  lifecycle_hook_name = "${var.name}-drain"

  release_object_arn            = "arn:${local.partition}:s3:::${var.release_bucket}/${var.release_key}"
  bootstrap_token_parameter_arn = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${var.bootstrap_token_parameter_name}"
  # The group's ARN holds a generated id; the name pins it to this group.
  autoscaling_group_arn        = "arn:${local.partition}:autoscaling:${local.region}:${local.account_id}:autoScalingGroup:*:autoScalingGroupName/${var.name}"
  autoscaling_service_role_arn = "arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"

  tags = merge(var.tags, { "sluice:fleet" = var.name, "sluice:component" = "worker" })

  # Every destination a worker talks to, one rule each: nothing else leaves the instance.
  egress_rules = tomap(merge(
    { for cidr in var.control_plane_cidr_blocks : "control-plane ${cidr}" => {
      description = "Sluice control plane", port = var.control_plane_port, cidr = cidr, prefix_list = tostring(null)
    } },
    { for cidr in var.source_postgres_cidr_blocks : "postgres ${cidr}" => {
      description = "PostgreSQL sources", port = var.source_postgres_port, cidr = cidr, prefix_list = tostring(null)
    } },
    { for pair in setproduct(var.starrocks_cidr_blocks, var.starrocks_ports) : "starrocks ${pair[0]} ${pair[1]}" => {
      description = "StarRocks", port = pair[1], cidr = pair[0], prefix_list = tostring(null)
    } },
    { for cidr in var.https_egress_cidr_blocks : "https ${cidr}" => {
      description = "HTTPS to AWS APIs (S3, SSM, KMS, CloudWatch Logs, Auto Scaling)", port = 443, cidr = cidr, prefix_list = tostring(null)
    } },
    { for id in var.https_egress_prefix_list_ids : "https ${id}" => {
      description = "HTTPS to AWS APIs (prefix list)", port = 443, cidr = tostring(null), prefix_list = id
    } },
  ))
}

# --- encryption key ----------------------------------------------------------------------------------------

data "aws_iam_policy_document" "kms" {
  count = local.create_kms_key ? 1 : 0

  # The account's default key administration: without it IAM policies could not grant use of the key.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # Auto Scaling launches the instances, so its service-linked role creates the encrypted volumes.
  statement {
    sid       = "AutoScalingUseOfTheKey"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.autoscaling_service_role_arn]
    }
  }

  statement {
    sid       = "AutoScalingGrants"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.autoscaling_service_role_arn]
    }
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }

  # CloudWatch Logs encrypts this fleet's log group, and nothing else, with the key.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.${local.dns_suffix}"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"]
    }
  }
}

resource "aws_kms_key" "this" {
  count = local.create_kms_key ? 1 : 0

  description             = "Sluice workers ${var.name}: EBS volumes and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms[0].json
  tags                    = local.tags
}

resource "aws_kms_alias" "this" {
  count = local.create_kms_key ? 1 : 0

  name          = "alias/sluice-${var.name}-worker"
  target_key_id = aws_kms_key.this[0].key_id
}

# --- logs --------------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

# --- network -----------------------------------------------------------------------------------------------

resource "aws_security_group" "this" {
  name_prefix            = "${var.name}-worker-"
  description            = "Sluice workers ${var.name}: no ingress; egress to the control plane, sources, StarRocks and AWS APIs only"
  vpc_id                 = var.vpc_id
  revoke_rules_on_delete = true
  tags                   = merge(local.tags, { Name = "${var.name}-worker" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "this" {
  for_each = local.egress_rules

  security_group_id = aws_security_group.this.id
  description       = each.value.description
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
  prefix_list_id    = each.value.prefix_list
  tags              = local.tags
}

# --- instance role -----------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume_role" {
  statement {
    sid     = "Ec2AssumeRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.${local.dns_suffix}"]
    }
  }
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "ReadRelease"
    actions   = ["s3:GetObject"]
    resources = [local.release_object_arn]
  }

  statement {
    sid       = "ReadBootstrapToken"
    actions   = ["ssm:GetParameter"]
    resources = [local.bootstrap_token_parameter_arn]
  }

  dynamic "statement" {
    for_each = var.bootstrap_token_kms_key_arn == null ? [] : [var.bootstrap_token_kms_key_arn]
    content {
      sid       = "DecryptBootstrapToken"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ssm.${local.region}.${local.dns_suffix}"]
      }
    }
  }

  # What the SSM agent needs for Session Manager and Run Command (the core of
  # AmazonSSMManagedInstanceCore, without its Parameter Store, inventory and patching reads). These
  # actions support no resource-level restriction.
  statement {
    sid = "SsmAgent"
    actions = [
      "ssm:UpdateInstanceInformation",
      "ssm:ListInstanceAssociations",
      "ssm:DescribeAssociation",
      "ssm:UpdateInstanceAssociationStatus",
      "ssm:GetDocument",
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
      "ec2messages:AcknowledgeMessage",
      "ec2messages:DeleteMessage",
      "ec2messages:FailMessage",
      "ec2messages:GetEndpoint",
      "ec2messages:GetMessages",
      "ec2messages:SendReply",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "WriteLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.this.arn, "${aws_cloudwatch_log_group.this.arn}:log-stream:*"]
  }

  # The drain hook: a terminating worker says when it has drained.
  statement {
    sid       = "CompleteOwnLifecycleAction"
    actions   = ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"]
    resources = [local.autoscaling_group_arn]
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-worker"
  description        = "Sluice workers ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume_role.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "this" {
  name   = "sluice-worker"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_instance_profile" "this" {
  name = "${var.name}-worker"
  role = aws_iam_role.this.name
  tags = local.tags
}

# --- instances ---------------------------------------------------------------------------------------------

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-worker-"
  description            = "Sluice workers ${var.name}"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  ebs_optimized          = true
  update_default_version = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  network_interfaces {
    device_index                = 0
    associate_public_ip_address = false
    delete_on_termination       = true
    security_groups             = [aws_security_group.this.id]
  }

  block_device_mappings {
    device_name = var.root_device_name
    ebs {
      volume_type           = "gp3"
      volume_size           = var.root_volume_size_gb
      encrypted             = true
      kms_key_id            = local.kms_key_arn
      delete_on_termination = true
    }
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  monitoring {
    enabled = true
  }

  user_data = base64encode(templatefile("${path.module}/user-data.sh.tftpl", {
    region                         = local.region
    s3_endpoint                    = "https://s3.${local.region}.${local.dns_suffix}"
    release_bucket                 = var.release_bucket
    release_key                    = var.release_key
    release_sha256                 = var.release_sha256
    bootstrap_token_parameter_name = var.bootstrap_token_parameter_name
    control_plane_url              = var.control_plane_url
    control_plane_ca_pem           = trimspace(var.control_plane_ca_pem)
    log_group_name                 = local.log_group_name
    log_level                      = var.log_level
    autoscaling_group_name         = var.name
    lifecycle_hook_name            = local.lifecycle_hook_name
    drain_timeout_seconds          = var.drain_timeout_seconds
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = "${var.name}-worker" })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = "${var.name}-worker" })
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = length(var.https_egress_cidr_blocks) + length(var.https_egress_prefix_list_ids) > 0
      error_message = "Workers need HTTPS to S3, SSM and CloudWatch Logs: set https_egress_cidr_blocks or https_egress_prefix_list_ids."
    }
  }
}

resource "aws_autoscaling_group" "this" {
  name                      = var.name
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  health_check_type         = "EC2"
  health_check_grace_period = 300
  termination_policies      = ["OldestLaunchTemplate", "OldestInstance"]

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # A new launch template version replaces the workers in batches, keeping half of them working.
  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
    }
  }

  # On scale-in or refresh the instance waits in Terminating:Wait while the worker drains; the worker
  # completes the action when it is done, or the timeout lets termination continue.
  initial_lifecycle_hook {
    name                 = local.lifecycle_hook_name
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    default_result       = "CONTINUE"
    heartbeat_timeout    = var.drain_timeout_seconds + 60
  }

  dynamic "tag" {
    for_each = local.tags
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = false
    }
  }

  lifecycle {
    precondition {
      condition     = var.min_size <= var.desired_capacity && var.desired_capacity <= var.max_size
      error_message = "desired_capacity must be between min_size and max_size."
    }
  }
}
