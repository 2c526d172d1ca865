import { Duration, type RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  type HttpRoute,
  HttpStage,
  LogGroupLogDestination,
  type ThrottleSettings,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaAuthorizer, HttpLambdaResponseType } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The API's routes: everything under `/v1` goes to the api function, which routes it. */
export const API_ROUTE_PATHS = ['/v1/{proxy+}'] as const;

/** The web UI's routes: public, the static shell only (every data call it makes goes to `/v1` with the key). */
export const UI_ROUTE_PATHS = ['/ui', '/ui/{proxy+}'] as const;

/** The header that carries the API key (the authorizer's identity source). */
export const API_KEY_HEADER = 'x-api-key';

/**
 * Default throttling of the API's stage: a steady 100 requests per second,
 * bursts of 200. Far under an account's regional API Gateway quota, so a
 * runaway client of one engine cannot starve the other APIs of the
 * account; ample for operating workflows (starts, signals, reads). Set
 * `apiThrottle` on the engine for more.
 */
export const API_THROTTLE_DEFAULTS: Required<ThrottleSettings> = { rateLimit: 100, burstLimit: 200 };

/** Props of {@link SayiirHttpApi}. */
export interface SayiirHttpApiProps {
  /** The function that serves every route (payload format 2.0). */
  readonly handler: IFunction;
  /** The REQUEST authorizer in front of every `/v1` route. */
  readonly authorizer: IFunction;
  /**
   * The function serving the web UI's static shell at `GET /ui` and
   * `/ui/{proxy+}`, without the authorizer (the page asks for the key).
   * @default no UI routes
   */
  readonly ui?: IFunction;
  /** Retention of the access log group. */
  readonly logRetention: RetentionDays;
  /** Removal policy of the access log group. */
  readonly logRemovalPolicy: RemovalPolicy;
  /**
   * How long API Gateway caches an authorizer answer per key value.
   * @default Duration.minutes(5)
   */
  readonly authorizerCacheTtl?: Duration;
  /**
   * Stage throttling: requests over it get a 429 from API Gateway, before any function runs.
   * @default API_THROTTLE_DEFAULTS
   */
  readonly throttle?: ThrottleSettings;
}

/**
 * The HTTP API (API Gateway v2): `ANY /v1/{proxy+}` to the api function,
 * every route behind a Lambda REQUEST authorizer whose identity source is the
 * `x-api-key` header, and JSON access logs on the `$default` stage.
 *
 * Why a Lambda authorizer: HTTP APIs offer IAM, JWT or Lambda authorizers,
 * and clients present a static key, not a signature or a token; so the
 * authorizer makes API Gateway reject requests without a key before any
 * function runs, and the api function compares the key with the secret.
 */
export class SayiirHttpApi extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;
  /** The web UI's public routes (static shell only; empty without a UI function). */
  readonly uiRoutes: readonly HttpRoute[];
  /** Base URL of the API, ending in `/`. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: SayiirHttpApiProps) {
    super(scope, id);
    const authorizer = new HttpLambdaAuthorizer('ApiKeyAuthorizer', props.authorizer, {
      identitySource: [`$request.header.${API_KEY_HEADER}`],
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      resultsCacheTtl: props.authorizerCacheTtl ?? Duration.minutes(5),
    });
    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'Sayiir workflow engine API',
      createDefaultStage: false,
      defaultAuthorizer: authorizer,
    });
    const integration = new HttpLambdaIntegration('Api', props.handler);
    for (const path of API_ROUTE_PATHS) {
      this.httpApi.addRoutes({ path, methods: [HttpMethod.ANY], integration });
    }
    const uiRoutes: HttpRoute[] = [];
    if (props.ui) {
      const ui = new HttpLambdaIntegration('Ui', props.ui);
      for (const path of UI_ROUTE_PATHS) {
        uiRoutes.push(
          ...this.httpApi.addRoutes({
            path,
            methods: [HttpMethod.GET],
            integration: ui,
            authorizer: new HttpNoneAuthorizer(),
          }),
        );
      }
    }
    this.uiRoutes = uiRoutes;
    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      autoDeploy: true,
      throttle: { ...API_THROTTLE_DEFAULTS, ...props.throttle },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        // HTTP API context variables only ($context.identity.caller and the like are REST-only).
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            ip: '$context.identity.sourceIp',
            requestTime: '$context.requestTime',
            routeKey: '$context.routeKey',
            path: '$context.path',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latency: '$context.responseLatency',
            authorizerError: '$context.authorizer.error',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    this.url = this.stage.url;
  }
}
