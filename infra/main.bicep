// ScaleGrow on Azure: the Durable Functions growth service on serverless GPU container apps.
// Deploys into one resource group: storage (artifacts + Functions host + Durable task hub), a user-assigned managed
// identity with data-plane roles, Log Analytics + Application Insights, a Container Apps environment with a
// Consumption and a serverless GPU workload profile, the Functions app (Azure Functions on Container Apps, kind
// 'functionapp') pinned to the GPU profile, the Event Grid system topic for quantize-on-upload and, optionally, a
// Durable Task Scheduler. The container registry must exist already (az acr create) and hold the image
// (az acr build -f infra/Dockerfile .). See infra/README.md; infra/deploy.sh does all of it in one command.

targetScope = 'resourceGroup'

@description('Name prefix for every resource: lower-case letters, digits, single dashes; starts with a letter.')
@minLength(3)
@maxLength(12)
param namePrefix string

@description('Azure region; it must offer serverless GPUs of the chosen type (infra/README.md lists how to check).')
param location string = resourceGroup().location

@description('Serverless GPU type the Functions app runs on.')
@allowed([
  'Consumption-GPU-NC8as-T4'
  'Consumption-GPU-NC24-A100'
])
param gpuProfileType string = 'Consumption-GPU-NC8as-T4'

@description('Existing Azure Container Registry (same resource group) that holds the Functions image.')
@minLength(5)
@maxLength(50)
param registryName string

@description('Image repository inside the registry.')
param imageRepository string = 'scalegrow-functions'

@description('Image tag built by az acr build.')
@minLength(1)
param imageTag string

@description('''Durable Functions backend. AzureStorage (default) keeps the task hub in the storage account below and
needs no code change, but Container Apps cannot autoscale it, so at least one GPU replica stays running.
DurableTaskScheduler (Azure-managed) lets the app scale on orchestration load, down to zero; the app must reference
the DurableTask.AzureManaged worker extension.''')
@allowed([
  'AzureStorage'
  'DurableTaskScheduler'
])
param durableBackend string = 'AzureStorage'

@description('Durable task hub name: 3-45 letters and digits, starting with a letter (valid for both backends).')
@minLength(3)
@maxLength(45)
param taskHubName string = 'ScaleGrow'

@description('Minimum replicas. Raised to 1 with the AzureStorage backend (no autoscaling there); 0 = scale to zero.')
@minValue(0)
@maxValue(10)
param minReplicas int = 1

@description('Maximum replicas; each replica holds one whole GPU and runs one training activity at a time.')
@minValue(1)
@maxValue(10)
param maxReplicas int = 1

@description('Object ID of the person or group allowed to upload models and read results; empty for none.')
param operatorPrincipalId string = ''

@description('Principal type of operatorPrincipalId.')
@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

@description('Days an upload stays in the uploads container (lifecycle rule); its quantized result is kept.')
@minValue(1)
@maxValue(3650)
param uploadsRetentionDays int = 14

@description('Days a rejected upload and its error report stay in the rejected container (lifecycle rule).')
@minValue(1)
@maxValue(3650)
param rejectedRetentionDays int = 30

@description('''Storage firewall default. Allow (default): the account is reachable from any network and guarded by
Entra ID alone. Deny: only storageAllowedIpRanges, storageAllowedSubnetIds and private endpoints get through; set
environmentSubnetId so the app runs in an allowed subnet. Trade-offs in infra/README.md.''')
@allowed([
  'Allow'
  'Deny'
])
param storageNetworkDefaultAction string = 'Allow'

@description('Public IPs or CIDR ranges allowed to storage when storageNetworkDefaultAction is Deny (operators, CI).')
param storageAllowedIpRanges array = []

@description('Subnet IDs with the Microsoft.Storage service endpoint allowed to storage when the default is Deny.')
param storageAllowedSubnetIds array = []

@description('Subnet ID for storage private endpoints (blob, queue, table) and their DNS zones; empty for none.')
param storagePrivateEndpointSubnetId string = ''

@description('Disabled: no public storage endpoint at all (needs storagePrivateEndpointSubnetId and environmentSubnetId).')
@allowed([
  'Enabled'
  'Disabled'
])
param storagePublicNetworkAccess string = 'Enabled'

@description('Subnet ID (/27 or larger, delegated to Microsoft.App/environments) for the Container Apps environment.')
param environmentSubnetId string = ''

@description('Tags for every resource.')
param tags object = {
  application: 'scalegrow'
}

// Names: the suffix makes the globally unique ones (storage, scheduler) unique per resource group.
var suffix = substring(uniqueString(resourceGroup().id, namePrefix), 0, 6)
var compactPrefix = toLower(replace(namePrefix, '-', ''))
var storageAccountName = take('${compactPrefix}st${suffix}', 24)
var gpuProfileName = gpuProfileType == 'Consumption-GPU-NC24-A100' ? 'gpu-a100' : 'gpu-t4'
var useScheduler = durableBackend == 'DurableTaskScheduler'
// Container Apps cannot scale the Azure Storage backend from zero: a replica must be up to poll the task hub.
var effectiveMinReplicas = useScheduler ? minReplicas : max(minReplicas, 1)

resource registry 'Microsoft.ContainerRegistry/registries@2025-04-01' existing = {
  name: registryName
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: '${namePrefix}-id'
  location: location
  tags: tags
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    accountName: storageAccountName
    location: location
    uploadsRetentionDays: uploadsRetentionDays
    rejectedRetentionDays: rejectedRetentionDays
    networkDefaultAction: storageNetworkDefaultAction
    allowedIpRanges: storageAllowedIpRanges
    allowedSubnetIds: storageAllowedSubnetIds
    privateEndpointSubnetId: storagePrivateEndpointSubnetId
    publicNetworkAccess: storagePublicNetworkAccess
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    namePrefix: namePrefix
    location: location
    tags: tags
  }
}

module scheduler 'modules/durable-scheduler.bicep' = if (useScheduler) {
  name: 'durable-scheduler'
  params: {
    name: '${namePrefix}-dts-${suffix}'
    location: location
    taskHubName: taskHubName
    tags: tags
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.properties.principalId
    storageAccountName: storage.outputs.accountName
    registryName: registry.name
    appInsightsName: monitoring.outputs.appInsightsName
    durableSchedulerName: useScheduler ? scheduler!.outputs.schedulerName : ''
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module environment 'modules/environment.bicep' = {
  name: 'environment'
  params: {
    name: '${namePrefix}-env'
    location: location
    gpuProfileType: gpuProfileType
    gpuProfileName: gpuProfileName
    workspaceId: monitoring.outputs.workspaceId
    infrastructureSubnetId: environmentSubnetId
    tags: tags
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'function-app'
  params: {
    name: '${namePrefix}-func'
    location: location
    environmentId: environment.outputs.environmentId
    gpuProfileName: environment.outputs.gpuProfileName
    gpuProfileType: gpuProfileType
    image: '${registry.properties.loginServer}/${imageRepository}:${imageTag}'
    registryServer: registry.properties.loginServer
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.accountName
    artifactBlobEndpoint: storage.outputs.blobEndpoint
    taskHubName: taskHubName
    durableBackend: durableBackend
    durableSchedulerEndpoint: useScheduler ? scheduler!.outputs.endpoint : ''
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    minReplicas: effectiveMinReplicas
    maxReplicas: maxReplicas
    tags: tags
  }
  // The image pull and the host's first storage calls need the role assignments to exist.
  dependsOn: [
    roles
  ]
}

output functionAppName string = functionApp.outputs.name
output functionAppUrl string = 'https://${functionApp.outputs.fqdn}'
output storageAccountName string = storage.outputs.accountName
output artifactAccountUrl string = storage.outputs.blobEndpoint
output identityClientId string = identity.properties.clientId
output eventGridSystemTopicName string = storage.outputs.eventGridSystemTopicName
output durableBackend string = durableBackend
output effectiveMinReplicas int = effectiveMinReplicas
