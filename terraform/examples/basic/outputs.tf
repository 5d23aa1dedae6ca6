output "autoscaling_group_name" {
  description = "The workers' Auto Scaling group."
  value       = module.worker.autoscaling_group_name
}

output "security_group_id" {
  description = "Allow this security group as a source on the control plane, PostgreSQL and StarRocks."
  value       = module.worker.security_group_id
}

output "kms_key_arn" {
  description = "The key encrypting the workers' volumes and logs."
  value       = module.worker.kms_key_arn
}
