import { Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { SessionModule, type SessionModuleOptions } from '../lib/index.js';
import sessionConfig from './config/session.config.js';
import { AppController } from './app.controller.js';

@Module({
  imports: [
    ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [sessionConfig] }),
    SessionModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService) => config.getOrThrow<SessionModuleOptions>('session'),
    }),
  ],
  controllers: [AppController],
})
export class AppModule {}
