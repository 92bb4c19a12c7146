// Every operation's body is AWS JSON 1.1, named as such (a repeat was answered before this).
import { KmsError } from '../errors.js';
import { CONTENT_TYPE, type KmsMiddleware } from './state.js';

export const contentType: KmsMiddleware = async (ctx, next) => {
  if (ctx.get('content-type').split(';')[0]!.trim().toLowerCase() !== CONTENT_TYPE) throw new KmsError('SerializationException', `Content-Type must be ${CONTENT_TYPE}`);
  await next();
};
