output "autoscaling_group_name" {
  description = "Name of the workers' Auto Scaling group (scale it, or start an instance refresh, by this name)."
  value       = aws_autoscaling_group.this.name
}

output "autoscaling_group_arn" {
  description = "ARN of the workers' Auto Scaling group."
  value       = aws_autoscaling_group.this.arn
}

output "lifecycle_hook_name" {
  description = "Name of the termination lifecycle hook during which a worker drains."
  value       = local.lifecycle_hook_name
}

output "launch_template_id" {
  description = "ID of the workers' launch template."
  value       = aws_launch_template.this.id
}

output "launch_template_latest_version" {
  description = "Latest version of the launch template; the Auto Scaling group always uses it, and a new version starts an instance refresh."
  value       = aws_launch_template.this.latest_version
}

output "security_group_id" {
  description = "ID of the workers' security group (no ingress). Allow it as a source on the control plane, PostgreSQL and StarRocks."
  value       = aws_security_group.this.id
}

output "iam_role_name" {
  description = "Name of the workers' instance role."
  value       = aws_iam_role.this.name
}

output "iam_role_arn" {
  description = "ARN of the workers' instance role (for key and bucket policies that name it)."
  value       = aws_iam_role.this.arn
}

output "instance_profile_arn" {
  description = "ARN of the workers' instance profile."
  value       = aws_iam_instance_profile.this.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the EBS volumes and the log group: the one created here, or kms_key_arn as given."
  value       = local.kms_key_arn
}

output "log_group_name" {
  description = "CloudWatch Logs group receiving the workers' logs."
  value       = aws_cloudwatch_log_group.this.name
}
