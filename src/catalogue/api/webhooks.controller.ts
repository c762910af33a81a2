import { Body, Controller, Delete, Get, HttpCode, Param, Post, UseGuards, UsePipes } from '@nestjs/common';
import { ApiBody, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiResponse, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { IsString, IsUUID } from 'class-validator';
import { WebhooksService } from '../../notifications/webhooks.service.js';
import { ErrorEnvelopeDto } from '../../platform/http/error-envelope.dto.js';
import { CATALOGUE_TOKEN_SCHEME, CatalogueTokenGuard } from './catalogue-token.guard.js';
import { registrationValidation } from './registration-validation.pipe.js';

class OrganisationPathDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'org_id must be a UUID' })
  org_id!: string;
}

class WebhookPathDto extends OrganisationPathDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'webhook_id must be a UUID' })
  webhook_id!: string;
}

class WebhookEndpointDto {
  @ApiProperty({ example: 'https://platform.example.com/hooks/downloads', description: 'https only; never a private, loopback or link-local address' })
  @IsString({ message: 'url must be a string' })
  url!: string;
}

/**
 * An organisation's webhook endpoints, as the CLI manages them: created with a secret shown once, listed
 * without it, deleted.
 */
@ApiTags('webhooks')
@ApiSecurity(CATALOGUE_TOKEN_SCHEME)
@UseGuards(CatalogueTokenGuard)
@UsePipes(registrationValidation)
@ApiResponse({ status: 400, type: ErrorEnvelopeDto, description: 'a malformed body, path parameter or URL (INVALID_REQUEST)' })
@ApiResponse({ status: 401, type: ErrorEnvelopeDto, description: 'no token, or not INTERNAL_API_TOKEN (UNAUTHENTICATED)' })
@ApiResponse({ status: 404, type: ErrorEnvelopeDto, description: 'no such organisation or endpoint (NOT_FOUND)' })
@Controller('internal/v0/organisations/:org_id/webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  @HttpCode(201)
  @ApiOperation({ summary: 'Creates an endpoint; answers {id, url, secret}, the secret shown this once (Standard Webhooks, whsec_...)' })
  @ApiBody({ type: WebhookEndpointDto })
  @ApiCreatedResponse({ description: 'the endpoint: {id, url, secret}' })
  create(@Param() path: OrganisationPathDto, @Body() body: WebhookEndpointDto) {
    return this.webhooks.create(path.org_id, body.url);
  }

  @Get()
  @ApiOperation({ summary: "The organisation's endpoints, without their secrets" })
  @ApiOkResponse({ description: 'the endpoints: [{id, url, created_at}]' })
  list(@Param() path: OrganisationPathDto) {
    return this.webhooks.list(path.org_id);
  }

  @Delete(':webhook_id')
  @ApiOperation({ summary: 'Deletes an endpoint; its pending deliveries are dropped' })
  @ApiOkResponse({ description: 'the endpoint deleted' })
  delete(@Param() path: WebhookPathDto) {
    return this.webhooks.delete(path.webhook_id, path.org_id);
  }
}
